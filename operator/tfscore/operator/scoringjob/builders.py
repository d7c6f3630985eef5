"""Pure builders: a validated ScoringJob (+ operator config) → the Kubernetes objects and Spark configuration it runs as.

No I/O, no clock, no Kubernetes client: every function returns plain dicts/strings, so each spec field's destination is
unit-tested directly. The children's names, labels and owner references come from names.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import yaml

from tfscore.api import common, contract, properties, scoringjob
from tfscore.api.common import memory_mib
from tfscore.api.scoringjob import ScoringJob, ScoringJobSpec
from tfscore.operator.config import OperatorConfig
from tfscore.operator.scoringjob import names

_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: same YAML, ~10x faster

# Container args, not command: the image's entrypoint (tini) stays PID 1, forwards SIGTERM to `tfscore run` and reaps Spark's
# Python workers. As PID 1 itself, Python ignored SIGTERM: a deleted driver pod ran on for its whole grace period.
DRIVER_ARGS = ["tfscore", "run", "--spec", contract.SPEC_FILE, "--spark-properties", contract.SPARK_PROPERTIES_FILE]


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where an admission puts one role's pods (Kueue: the assigned ResourceFlavors' node labels and tolerations, and
    admission checks' pod-set updates): merged into the pod spec on top of the job's own nodeSelector/tolerations."""

    node_selector: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)


def _place(metadata: dict[str, Any], pod_spec: dict[str, Any], placement: Placement | None) -> None:
    if placement is None:
        return
    metadata["labels"] = {**placement.labels, **metadata.get("labels", {})}  # tfscore's own labels are never replaced
    if placement.annotations:
        metadata["annotations"] = {**metadata.get("annotations", {}), **placement.annotations}
    if placement.node_selector:
        pod_spec["nodeSelector"] = {**pod_spec.get("nodeSelector", {}), **placement.node_selector}
    tolerations = list(pod_spec.get("tolerations", []))
    tolerations += [dict(t) for i, t in enumerate(placement.tolerations)
                    if t not in tolerations and t not in placement.tolerations[:i]]
    if tolerations:
        pod_spec["tolerations"] = tolerations


# ---------------------------------------------------------------- the captured manifest (job.json)


def resolve_image(spec: ScoringJobSpec, config: OperatorConfig) -> str:
    """spec.image, else the operator's pinned runtime image (the GPU variant for GPU executors)."""
    return spec.image or config.image_for(spec.executor.gpu)


def job_document(job: ScoringJob, uid: str, config: OperatorConfig) -> dict[str, Any]:
    """job.json: the validated manifest in wire form, image resolved, as the run will use it on every attempt."""
    spec = job.spec.model_copy(update={"image": resolve_image(job.spec, config)})
    return {
        "apiVersion": common.API_VERSION,
        "kind": scoringjob.KIND,
        "metadata": {"name": job.metadata.name, "namespace": job.metadata.namespace, "uid": uid},
        "spec": spec.to_wire(),
    }


# ---------------------------------------------------------------- Spark configuration


def overhead_mib(resources: scoringjob.Resources) -> int:
    """Non-JVM memory: the spec's memoryOverhead, else max(384 MiB, 40% of memory) (Python workers + TensorFlow)."""
    if resources.memory_overhead:
        return memory_mib(resources.memory_overhead)
    return max(384, int(memory_mib(resources.memory) * 0.4))


def task_gpu_amount(gpu: int, cores: int) -> str:
    """spark.task.resource.gpu.amount: the executor's GPUs shared by its concurrent tasks (fractions ≤ 1 allowed)."""
    if gpu >= cores:
        return str(gpu // cores)
    return f"{gpu / cores:.4g}"


# Spark's own endpoints closed and the driver kept to the calls its Role allows (each key is reserved: a spec's
# sparkConf may not set it, tfscore.operator.scoringjob.policy).
EXECUTOR_MASTER_ENV = "TFSCORE_SPARK_MASTER"  # the executor entrypoint's -Dspark.master
SECURITY_PROPERTIES = {
    "spark.authenticate": "true",                    # RPC and block transfers need the job's secret …
    "spark.authenticate.secret.file": names.AUTH_SECRET_FILE,  # … read from the mounted Secret by driver and executors
    # Spark 4.3's executors read that file only when their own conf has a k8s:// spark.master (SecurityManager
    # .secretKeyFromFile), which Spark never hands them: without it every executor dies with "A secret key must be
    # specified via the spark.authenticate.secret config" before it can fetch the driver's properties. Spark refuses
    # -Dspark.* in spark.executor.extraJavaOptions (INVALID_EXECUTOR_SPARK_OPTIONS), so the image's executor entrypoint
    # passes this one to the JVM itself (images/runtime/entrypoint.sh).
    f"spark.executorEnv.{EXECUTOR_MASTER_ENV}": names.SPARK_MASTER,
    "spark.network.crypto.enabled": "true",          # AES-based authentication and encryption of every RPC
    "spark.ui.killEnabled": "false",                 # the UI cannot kill jobs or stages
    "spark.kubernetes.executor.disableConfigMap": "true",  # no executor ConfigMap: the driver needs no configmaps
    "spark.kubernetes.driver.ownPersistentVolumeClaim": "false",    # no claim list/delete calls
    "spark.kubernetes.driver.reusePersistentVolumeClaim": "false",
    "spark.kubernetes.driver.service.deleteOnTermination": "false",  # no services calls (the operator owns it)
}
GPU_PROPERTIES = ("spark.executor.resource.gpu.amount", "spark.executor.resource.gpu.vendor",
                  "spark.executor.resource.gpu.discoveryScript", "spark.task.resource.gpu.amount")


def spark_properties(job: ScoringJob, namespace: str, attempt: int, image: str,
                     pull_policy: str = "IfNotPresent") -> dict[str, str]:
    """The Spark-on-Kubernetes client-mode configuration of one attempt (then spec.sparkConf, which the policy keeps
    off every key set here)."""
    spec, name = job.spec, job.metadata.name
    ex = spec.executor
    props = {
        "spark.app.name": name,
        "spark.master": names.SPARK_MASTER,
        "spark.submit.deployMode": "client",
        "spark.kubernetes.namespace": namespace,
        "spark.driver.host": f"{names.service_name(name)}.{namespace}.svc",
        "spark.driver.port": str(names.DRIVER_PORT),
        "spark.driver.blockManager.port": str(names.BLOCK_MANAGER_PORT),
        "spark.driver.bindAddress": "0.0.0.0",
        "spark.ui.port": str(names.UI_PORT),
        "spark.driver.cores": str(spec.driver.cores),
        "spark.driver.memory": f"{memory_mib(spec.driver.memory)}m",
        "spark.local.dir": names.LOCAL_DIR,
        "spark.kubernetes.driver.pod.name": names.driver_pod_name(name, attempt),
        "spark.kubernetes.container.image": image,
        "spark.kubernetes.container.image.pullPolicy": pull_policy,  # Spark overrides the template's with this
        "spark.kubernetes.executor.podTemplateFile": contract.EXECUTOR_TEMPLATE_FILE,
        "spark.kubernetes.executor.podTemplateContainerName": names.EXECUTOR_CONTAINER,
        "spark.kubernetes.executor.podNamePrefix": names.executor_prefix(name, attempt),
        "spark.kubernetes.executor.deleteOnTermination": "true",
        "spark.executor.instances": str(ex.instances),
        "spark.executor.cores": str(ex.cores),
        "spark.executor.memory": f"{memory_mib(ex.memory)}m",
        "spark.executor.memoryOverhead": f"{overhead_mib(ex)}m",
        "spark.kubernetes.executor.limit.cores": str(ex.cores),
        # No TF_NUM_INTRAOP_THREADS here: each task's TensorFlow gets the task's cores (spark.task.cpus, default 1), the
        # runtime's decision (model.configure_threads). Set to the executor's cores, every one of its concurrent tasks
        # ran that many threads: cores² threads on cores CPUs.
    }
    props.update(SECURITY_PROPERTIES)
    if ex.gpu > 0:
        props.update(zip(GPU_PROPERTIES, (str(ex.gpu), names.GPU_VENDOR, names.GPU_DISCOVERY_SCRIPT,
                                          task_gpu_amount(ex.gpu, ex.cores)), strict=True))
    for key, value in spec.spark_conf.items():  # the user's word is last, also in the file
        props.pop(key, None)
        props[key] = value
    return props



# ---------------------------------------------------------------- pods


def pod_security_context(config: OperatorConfig) -> dict[str, Any]:
    uid = config.run_as_user
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context(config: OperatorConfig) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": config.run_as_user, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def _scratch_volumes(auth_secret: str | None) -> list[dict[str, Any]]:
    volumes = [{"name": name, "emptyDir": {}} for name, _ in names.SCRATCH_VOLUMES]
    if auth_secret:  # a file, never env or args: Spark reads it (spark.authenticate.secret.file)
        volumes.append({"name": names.AUTH_VOLUME, "secret": {"secretName": auth_secret, "defaultMode": 0o440}})
    return volumes


def _scratch_mounts(auth_secret: str | None) -> list[dict[str, Any]]:
    mounts = [{"name": name, "mountPath": path} for name, path in names.SCRATCH_VOLUMES]
    if auth_secret:
        mounts.append({"name": names.AUTH_VOLUME, "mountPath": names.AUTH_DIR, "readOnly": True})
    return mounts


def _base_env() -> list[dict[str, Any]]:
    return [{"name": "HOME", "value": names.HOME_DIR}]


def _tolerations(spec: ScoringJobSpec, gpu: bool) -> list[dict[str, Any]]:
    tolerations = [dict(t) for t in spec.tolerations]
    if gpu and not any(t.get("key") == names.GPU_RESOURCE for t in tolerations):
        tolerations.append({"key": names.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    return tolerations


def _pod_spec_common(spec: ScoringJobSpec, config: OperatorConfig, *, gpu: bool,
                     extra_volumes: list[dict[str, Any]], auth_secret: str | None) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "securityContext": pod_security_context(config),
        "volumes": [*extra_volumes, *_scratch_volumes(auth_secret), *[dict(v) for v in spec.volumes]],
    }
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.priority_class_name:
        pod["priorityClassName"] = spec.priority_class_name
    tolerations = _tolerations(spec, gpu)
    if tolerations:
        pod["tolerations"] = tolerations
    return pod


def _container_common(spec: ScoringJobSpec, config: OperatorConfig, name: str, image: str,
                      extra_env: list[dict[str, Any]], extra_mounts: list[dict[str, Any]],
                      auth_secret: str | None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": config.image_pull_policy,
        # The operator's entries first, so spec.env may refer to them ($(POD_NAME)); the policy refuses their names.
        "env": [*extra_env, *_base_env(), *[e.to_wire() for e in spec.env]],
        "volumeMounts": [*extra_mounts, *_scratch_mounts(auth_secret), *[dict(m) for m in spec.volume_mounts]],
        "securityContext": container_security_context(config),
    }
    if spec.env_from:
        container["envFrom"] = [dict(e) for e in spec.env_from]
    return container


def executor_pod_template(job: ScoringJob, config: OperatorConfig, image: str,
                          auth_secret: str | None = None, placement: Placement | None = None) -> dict[str, Any]:
    """The executor pod template Spark starts executors from (Spark adds cpu/memory, ports and its own env)."""
    spec, name = job.spec, job.metadata.name
    gpu = spec.executor.gpu
    container = _container_common(spec, config, names.EXECUTOR_CONTAINER, image, extra_env=[], extra_mounts=[],
                                  auth_secret=auth_secret)
    if gpu > 0:
        container["resources"] = {"limits": {names.GPU_RESOURCE: str(gpu)}}
    pod_spec = _pod_spec_common(spec, config, gpu=gpu > 0, extra_volumes=[], auth_secret=auth_secret)
    pod_spec["automountServiceAccountToken"] = False  # executors never call the Kubernetes API
    pod_spec["containers"] = [container]
    metadata: dict[str, Any] = {"labels": names.labels(name, names.ROLE_EXECUTOR)}
    _place(metadata, pod_spec, placement)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}


def job_json(job: ScoringJob, uid: str, config: OperatorConfig) -> str:
    """job.json as written into every attempt's ConfigMap (its sha256 is the status's specHash)."""
    return json.dumps(job_document(job, uid, config), indent=2, sort_keys=True) + "\n"


def config_map(job: ScoringJob, body: Mapping[str, Any], config: OperatorConfig, attempt: int,
               auth_secret: str | None = None, placement: Placement | None = None) -> dict[str, Any]:
    """ConfigMap <job>-spec-<attempt> (immutable): job.json, this attempt's spark.properties and the executor pod
    template."""
    meta = body["metadata"]
    namespace = meta["namespace"]
    image = resolve_image(job.spec, config)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": names.metadata(names.config_map_name(job.metadata.name, attempt), namespace, job.metadata.name,
                                   names.ROLE_CONFIG, names.owner_reference(body)),
        "immutable": True,
        "data": {
            contract.SPEC_KEY: job_json(job, meta["uid"], config),
            contract.PROPERTIES_KEY: attempt_properties(job, namespace, attempt, image, config.image_pull_policy),
            contract.EXECUTOR_TEMPLATE_KEY: yaml.dump(executor_pod_template(job, config, image, auth_secret, placement),
                                                    Dumper=_YAML_DUMPER, sort_keys=False),
        },
    }


def attempt_properties(job: ScoringJob, namespace: str, attempt: int, image: str,
                       pull_policy: str = "IfNotPresent") -> str:
    header = f"Generated by the tfscore operator for ScoringJob {namespace}/{job.metadata.name}, attempt {attempt}."
    return properties.render(spark_properties(job, namespace, attempt, image, pull_policy), header=header)


def driver_service(job: ScoringJob, body: Mapping[str, Any]) -> dict[str, Any]:
    """Headless Service: a stable DNS name for the driver (spark.driver.host) across attempts."""
    name = job.metadata.name
    namespace = body["metadata"]["namespace"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.metadata(names.service_name(name), namespace, name, names.ROLE_DRIVER, names.owner_reference(body)),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # executors resolve the driver before any readiness
            "selector": {names.LABEL_JOB: name, names.LABEL_ROLE: names.ROLE_DRIVER},
            "ports": [
                {"name": "driver-rpc", "port": names.DRIVER_PORT, "targetPort": names.DRIVER_PORT, "protocol": "TCP"},
                {"name": "blockmanager", "port": names.BLOCK_MANAGER_PORT, "targetPort": names.BLOCK_MANAGER_PORT,
                 "protocol": "TCP"},
                {"name": "spark-ui", "port": names.UI_PORT, "targetPort": names.UI_PORT, "protocol": "TCP"},
            ],
        },
    }


def _resources(res: scoringjob.Resources) -> dict[str, Any]:
    memory = f"{memory_mib(res.memory) + overhead_mib(res)}Mi"
    return {"requests": {"cpu": str(res.cores), "memory": memory},
            "limits": {"cpu": str(res.cores), "memory": memory}}


def driver_pod(job: ScoringJob, body: Mapping[str, Any], config: OperatorConfig, attempt: int,
               deadline_seconds: int | None = None, auth_secret: str | None = None,
               spec_sha256: str | None = None, placement: Placement | None = None) -> dict[str, Any]:
    """Driver pod of one attempt: `tfscore run` (exec form, no shell) with the ConfigMap mounted read-only."""
    spec, name = job.spec, job.metadata.name
    namespace = body["metadata"]["namespace"]
    image = resolve_image(spec, config)
    downward = [
        {"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}}
        for var, path in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"),
                          ("POD_IP", "status.podIP"))
    ]
    if spec_sha256:
        downward.append({"name": names.SPEC_SHA256_ENV, "value": spec_sha256})
    container = _container_common(
        spec, config, names.DRIVER_CONTAINER, image, extra_env=downward,
        extra_mounts=[{"name": names.CONFIG_VOLUME, "mountPath": contract.SPEC_MOUNT, "readOnly": True}],
        auth_secret=auth_secret,
    )
    container.update({
        "args": list(DRIVER_ARGS),
        "ports": [{"name": "driver-rpc", "containerPort": names.DRIVER_PORT, "protocol": "TCP"},
                  {"name": "blockmanager", "containerPort": names.BLOCK_MANAGER_PORT, "protocol": "TCP"},
                  {"name": "spark-ui", "containerPort": names.UI_PORT, "protocol": "TCP"}],
        "resources": _resources(spec.driver),
        "terminationMessagePath": contract.TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    })
    config_volume = {"name": names.CONFIG_VOLUME, "configMap": {"name": names.config_map_name(name, attempt)}}
    pod_spec = _pod_spec_common(spec, config, gpu=False, extra_volumes=[config_volume], auth_secret=auth_secret)
    pod_spec.update({
        "serviceAccountName": spec.service_account_name or config.driver_service_account,
        "automountServiceAccountToken": True,  # Spark's driver creates and watches executor pods
        "containers": [container],
    })
    if deadline_seconds is not None:
        pod_spec["activeDeadlineSeconds"] = max(1, int(deadline_seconds))  # the kubelet enforces it too
    metadata = names.metadata(names.driver_pod_name(name, attempt), namespace, name, names.ROLE_DRIVER,
                              names.owner_reference(body))
    metadata["labels"][names.LABEL_ATTEMPT] = str(attempt)
    _place(metadata, pod_spec, placement)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}
