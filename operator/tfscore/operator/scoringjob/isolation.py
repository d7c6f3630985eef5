"""Pure builders of what keeps one ScoringJob from another: its Spark authentication Secret, its NetworkPolicy, and the
digests and sizes the operator checks (the pods and properties that use them are built in builders.py, their names in names.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from tfscore.api import contract
from tfscore.api.scoringjob import ScoringJob
from tfscore.operator.scoringjob.builders import EXECUTOR_MASTER_ENV, GPU_PROPERTIES, SECURITY_PROPERTIES
from tfscore.operator.scoringjob.names import (
    AUTH_DIR,
    AUTH_KEY,
    AUTH_VOLUME,
    CONFIG_VOLUME,
    LABEL_JOB,
    ROLE_CONFIG,
    ROLE_DRIVER,
    SA_TOKEN_DIR,
    SCRATCH_VOLUMES,
    SPEC_SHA256_ENV,
    auth_secret_prefix,
    dns_label,
    metadata,
    owner_reference,
)

# What the operator owns in every pod: a job may not name, mount over or set these (policy.py).
OPERATOR_VOLUMES = (*(name for name, _ in SCRATCH_VOLUMES), CONFIG_VOLUME, AUTH_VOLUME)
OPERATOR_PATHS = (*(path for _, path in SCRATCH_VOLUMES), contract.SPEC_MOUNT, AUTH_DIR, SA_TOKEN_DIR,
                  contract.TERMINATION_LOG)
OPERATOR_ENV = ("POD_NAME", "POD_NAMESPACE", "POD_IP", "HOME", SPEC_SHA256_ENV, "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS", EXECUTOR_MASTER_ENV)

# Every key spark_properties may set (a unit test checks it against CPU and GPU jobs): reserved in spec.sparkConf.
OPERATOR_SPARK_KEYS = (
    "spark.app.name", "spark.master", "spark.submit.deployMode", "spark.kubernetes.namespace", "spark.driver.host",
    "spark.driver.port", "spark.driver.blockManager.port", "spark.driver.bindAddress", "spark.ui.port",
    "spark.driver.cores", "spark.driver.memory", "spark.local.dir", "spark.kubernetes.driver.pod.name",
    "spark.kubernetes.container.image", "spark.kubernetes.container.image.pullPolicy",
    "spark.kubernetes.executor.podTemplateFile", "spark.kubernetes.executor.podTemplateContainerName",
    "spark.kubernetes.executor.podNamePrefix", "spark.kubernetes.executor.deleteOnTermination",
    "spark.executor.instances", "spark.executor.cores", "spark.executor.memory", "spark.executor.memoryOverhead",
    "spark.kubernetes.executor.limit.cores", *SECURITY_PROPERTIES, *GPU_PROPERTIES,
    # Not set by the operator, still reserved: TensorFlow's threads follow spark.task.cpus (the knob a job turns).
    "spark.executorEnv.TF_NUM_INTRAOP_THREADS", "spark.executorEnv.TF_NUM_INTEROP_THREADS",
)


def sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def data_sha256(cm: Mapping[str, Any]) -> str:
    """One digest over a ConfigMap's keys and values (the driver pod carries it; its spec cannot change)."""
    data = cm.get("data") or {}
    return sha256(json.dumps({k: data[k] for k in sorted(data)}, separators=(",", ":")))


def config_map_size(cm: Mapping[str, Any]) -> int:
    """Bytes of a ConfigMap's data as the API server counts them (keys and values)."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in (cm.get("data") or {}).items())


def auth_secret(job: ScoringJob, body: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """The job's Spark authentication secret (random `key` from the caller: builders stay pure), owned by the job."""
    meta = metadata("", body["metadata"]["namespace"], job.metadata.name, ROLE_CONFIG, owner_reference(body))
    del meta["name"]
    meta["generateName"] = auth_secret_prefix(job.metadata.name)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "immutable": True,
            "data": {AUTH_KEY: base64.b64encode(key).decode()}}


def network_policy_name(job: str) -> str:
    return dns_label(job, "pods")


def network_policy(job: ScoringJob, body: Mapping[str, Any]) -> dict[str, Any]:
    """Ingress to the job's pods (driver RPC, block manager, UI; executors' ports) only from the job's own pods.
    Nothing else in the cluster needs them: the operator reads the API, `kubectl port-forward` enters the pod's own
    network namespace. Egress stays open (storage)."""
    name = job.metadata.name
    own = {"matchLabels": {LABEL_JOB: name}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(network_policy_name(name), body["metadata"]["namespace"], name, ROLE_DRIVER,
                              owner_reference(body)),
        "spec": {"podSelector": own, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": own}]}]},
    }
