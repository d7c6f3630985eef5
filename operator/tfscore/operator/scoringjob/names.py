"""Names, labels and owner references of a ScoringJob's children: deterministic, so creating them is idempotent (409 = already
there), and owned by the job, so deleting it garbage-collects them. The constants every builder and check shares live here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from tfscore.api import common, scoringjob

LABEL_JOB = f"{common.GROUP}/job"
LABEL_ROLE = f"{common.GROUP}/role"
LABEL_ATTEMPT = f"{common.GROUP}/attempt"
ROLE_DRIVER = "driver"
ROLE_EXECUTOR = "executor"
ROLE_CONFIG = "config"
MANAGED_BY = "tfscore-operator"

DRIVER_CONTAINER = "driver"
EXECUTOR_CONTAINER = "executor"
DRIVER_PORT = 7078
BLOCK_MANAGER_PORT = 7079
UI_PORT = 4040
SPARK_MASTER = "k8s://https://kubernetes.default.svc:443"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_VENDOR = "nvidia.com"
GPU_DISCOVERY_SCRIPT = "/opt/tfscore/bin/gpu-discovery.sh"

# Writable places on a read-only root filesystem (emptyDirs in driver and executor pods).
TMP_DIR = "/tmp"
LOCAL_DIR = "/var/data/spark-local"  # Spark reuses a template volume named spark-local-dir-1 mounted here
HOME_DIR = "/home/tfscore"
SCRATCH_VOLUMES = (("tmp", TMP_DIR), ("spark-local-dir-1", LOCAL_DIR), ("home", HOME_DIR))
CONFIG_VOLUME = "tfscore-spec"
AUTH_VOLUME = "tfscore-auth"
AUTH_DIR = "/etc/tfscore-auth"
AUTH_KEY = "spark-auth-secret"
AUTH_SECRET_FILE = f"{AUTH_DIR}/{AUTH_KEY}"
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SPEC_SHA256_ENV = "TFSCORE_SPEC_SHA256"  # the driver's attempt data, for the runtime to verify its mounted files
CONFIG_MAP_LIMIT = 900 * 1024  # bytes of ConfigMap data; the API server's limit is 1 MiB for the whole object


def dns_label(base: str, suffix: str, limit: int = 63) -> str:
    """`<base>-<suffix>` if it is a DNS-1035 label within `limit`; else a shortened, hashed, still-deterministic one."""
    name = f"{base}-{suffix}"
    if len(name) <= limit and name[0].isalpha():
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 4  # "j-" prefix + two dashes
    return f"j-{base[:keep].rstrip('-')}-{digest}-{suffix}"


def config_map_name(job: str, attempt: int) -> str:
    """One immutable ConfigMap per attempt: nobody can edit what a running attempt reads."""
    return f"{job}-spec-{attempt}"


def auth_secret_prefix(job: str) -> str:
    """generateName of the job's Spark authentication Secret: the API server picks a name nobody could pre-create."""
    return f"{job}-auth-"


def service_name(job: str) -> str:
    """The driver's headless Service (a DNS-1035 label: starts with a letter, ≤ 63 characters)."""
    return dns_label(job, "driver")


def driver_pod_name(job: str, attempt: int) -> str:
    return f"{job}-driver-{attempt}"


def executor_prefix(job: str, attempt: int) -> str:
    """spark.kubernetes.executor.podNamePrefix: Spark requires a DNS label of at most 47 characters."""
    return dns_label(job, f"a{attempt}", limit=47)


def labels(job: str, role: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "tfscore",
        "app.kubernetes.io/instance": job,
        "app.kubernetes.io/component": role,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_JOB: job,
        LABEL_ROLE: role,
    }


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    """Controller reference to the ScoringJob: garbage collection deletes the child with it."""
    meta = body["metadata"]
    return {"apiVersion": common.API_VERSION, "kind": scoringjob.KIND, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def metadata(name: str, namespace: str, job: str, role: str, owner: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(job, role), "ownerReferences": [dict(owner)]}
