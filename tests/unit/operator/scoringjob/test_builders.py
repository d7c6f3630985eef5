"""Builders are pure: every field of the spec lands where it should in the ConfigMap, Service, driver pod, executor pod
template and Spark properties."""

from __future__ import annotations

import json

import pytest
import yaml

from tfscore.api import common, properties, scoringjob
from tfscore.api.scoringjob import ScoringJob
from tfscore.operator.config import OperatorConfig
from tfscore.operator.scoringjob import builders, names

CONFIG = OperatorConfig(runtime_image="reg/tfscore/runtime@sha256:" + "a" * 64,
                        runtime_image_gpu="reg/tfscore/runtime-gpu@sha256:" + "b" * 64)
BODY = {"apiVersion": common.API_VERSION, "kind": scoringjob.KIND,
        "metadata": {"name": "risk", "namespace": "scoring", "uid": "uid-1", "generation": 1}}

FULL_SPEC = {
    "model": {"uri": "s3a://models/risk/", "version": 7, "signature": "score", "tags": ["serve", "gpu"]},
    "input": {"uri": "s3a://in/", "format": "csv", "options": {"header": "true"}, "where": "day = '2024-01-01'",
              "columns": {"features": ["f1", "f2"]}, "reader": "spark"},
    "output": {"uri": "s3a://out/", "format": "orc", "mode": "overwrite", "passthrough": ["user_id"],
               "predictions": {"probability": "score"}, "partitionBy": ["day"], "options": {"compression": "zstd"},
               "writer": "spark"},
    "batchSize": 8192,
    "onInvalidRow": "quarantine",
    "quarantineUri": "s3a://quarantine/",
    "driver": {"cores": 2, "memory": "3g", "memoryOverhead": "512m"},
    "executor": {"instances": 5, "cores": 4, "memory": "6Gi", "gpu": 2},
    "image": "",
    "sparkConf": {"spark.sql.shuffle.partitions": "64", "spark.kubernetes.executor.request.cores": "500m"},
    "backoffLimit": 3,
    "activeDeadlineSeconds": 7200,
    "startupTimeoutSeconds": 300,
    "ttlSecondsAfterFinished": 600,
    "suspend": False,
    "serviceAccountName": "scorer",
    "priorityClassName": "batch-high",
    "nodeSelector": {"pool": "gpu"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
    "env": [{"name": "AWS_REGION", "value": "eu-west-1"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "token"}}}],
    "envFrom": [{"secretRef": {"name": "s3-credentials"}}],
    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
}


def job_of(spec: dict, name: str = "risk") -> ScoringJob:
    return ScoringJob.model_validate({"apiVersion": common.API_VERSION, "kind": scoringjob.KIND,
                                      "metadata": {"name": name, "namespace": "scoring"}, "spec": spec})


@pytest.fixture
def full() -> ScoringJob:
    return job_of(FULL_SPEC)


@pytest.fixture
def minimal() -> ScoringJob:
    return job_of({"model": {"uri": "s3a://m/"}, "input": {"uri": "s3a://i/"}, "output": {"uri": "s3a://o/"}})


def driver(job: ScoringJob, attempt: int = 1, **kw) -> dict:
    return builders.driver_pod(job, BODY, CONFIG, attempt, **kw)


def container(pod: dict) -> dict:
    return pod["spec"]["containers"][0]


def template(job: ScoringJob) -> dict:
    cm = builders.config_map(job, BODY, CONFIG, 1)
    return yaml.safe_load(cm["data"]["executor-pod-template.yaml"])


def props(job: ScoringJob, attempt: int = 1) -> dict[str, str]:
    cm = builders.config_map(job, BODY, CONFIG, attempt)
    return properties.parse(cm["data"]["spark.properties"])


# Where each spec field goes; a new field in the model without a line here fails test_every_field_has_a_destination.
DESTINATIONS = {
    "model": "job.json", "models": "job.json", "input": "job.json", "output": "job.json", "batch_size": "job.json",
    "on_invalid_row": "job.json", "quarantine_uri": "job.json",
    "driver": "driver pod resources + spark.driver.*", "executor": "spark.executor.* + executor template",
    "image": "driver + executors", "spark_conf": "spark.properties (last)",
    "backoff_limit": "lifecycle", "active_deadline_seconds": "lifecycle + driver pod activeDeadlineSeconds",
    "startup_timeout_seconds": "lifecycle", "ttl_seconds_after_finished": "lifecycle", "suspend": "lifecycle",
    "service_account_name": "driver pod", "priority_class_name": "driver + executors (+ Workload priority)",
    "node_selector": "driver + executors", "tolerations": "driver + executors",
    "env": "driver + executors", "env_from": "driver + executors", "volumes": "driver + executors",
    "volume_mounts": "driver + executors", "drift": "job.json",
}


def test_every_field_has_a_destination():
    assert set(DESTINATIONS) == set(scoringjob.ScoringJobSpec.model_fields)


def test_job_json_is_the_validated_manifest_in_wire_form(full):
    cm = builders.config_map(full, BODY, CONFIG, 1)
    doc = json.loads(cm["data"]["job.json"])
    assert doc["apiVersion"] == "tfscore.io/v1alpha1" and doc["kind"] == "ScoringJob"
    assert doc["metadata"] == {"name": "risk", "namespace": "scoring", "uid": "uid-1"}
    for wire in ("model", "input", "output", "batchSize", "onInvalidRow", "quarantineUri", "backoffLimit",
                 "activeDeadlineSeconds", "ttlSecondsAfterFinished", "sparkConf"):
        expected = FULL_SPEC[wire] if wire != "model" else {**FULL_SPEC["model"], "version": "7"}
        assert doc["spec"][wire] == expected, wire
    assert doc["spec"]["image"] == CONFIG.runtime_image_gpu, "the image the run uses is recorded (resolved)"
    assert ScoringJob.model_validate(doc).spec.model_copy(update={"image": ""}) == full.spec


def test_image_default_gpu_variant_and_explicit(minimal, full):
    assert container(driver(minimal))["image"] == CONFIG.runtime_image
    assert container(driver(full))["image"] == CONFIG.runtime_image_gpu
    explicit = job_of({**FULL_SPEC, "image": "my/runtime@sha256:" + "c" * 64})
    for job, image in ((minimal, CONFIG.runtime_image), (full, CONFIG.runtime_image_gpu),
                       (explicit, "my/runtime@sha256:" + "c" * 64)):
        assert container(driver(job))["image"] == image
        assert props(job)["spark.kubernetes.container.image"] == image, "executors run the driver's exact image"
        assert template(job)["spec"]["containers"][0]["image"] == image
    assert OperatorConfig(runtime_image="x").image_for(gpu=1) == "x", "no GPU variant configured: the CPU image"


def test_driver_command_is_exec_form_never_a_shell(full):
    c = container(driver(full))
    assert c["args"] == ["tfscore", "run", "--spec", "/etc/tfscore/job.json",
                         "--spark-properties", "/etc/tfscore/spark.properties"]
    assert "command" not in c, "the image's entrypoint (tini) must stay PID 1: it forwards SIGTERM and reaps workers"
    assert not any("sh" == part or part.endswith("/sh") for part in c["args"])


def test_driver_pod_shape(full):
    pod = driver(full, attempt=3)
    meta, spec, c = pod["metadata"], pod["spec"], container(pod)
    assert meta["name"] == "risk-driver-3" and meta["namespace"] == "scoring"
    assert meta["labels"][names.LABEL_JOB] == "risk" and meta["labels"][names.LABEL_ATTEMPT] == "3"
    assert meta["labels"][names.LABEL_ROLE] == "driver"
    assert meta["ownerReferences"] == [{"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringJob", "name": "risk",
                                        "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}]
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "scorer"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert {p["containerPort"] for p in c["ports"]} == {7078, 7079, 4040}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/etc/tfscore"]["readOnly"] is True
    assert {"/tmp", "/var/data/spark-local", "/home/tfscore", "/data"} <= set(mounts)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["tfscore-spec"] == {"name": "tfscore-spec", "configMap": {"name": "risk-spec-3"}}
    assert all(volumes[n] == {"name": n, "emptyDir": {}} for n in ("tmp", "spark-local-dir-1", "home"))
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["HOME"]["value"] == "/home/tfscore"


def test_driver_service_account_default(minimal):
    assert driver(minimal)["spec"]["serviceAccountName"] == "tfscore-driver"
    other = OperatorConfig(driver_service_account="sa-x")
    assert builders.driver_pod(minimal, BODY, other, 1)["spec"]["serviceAccountName"] == "sa-x"


def test_driver_resources(full, minimal):
    res = container(driver(full))["resources"]
    assert res["requests"] == {"cpu": "2", "memory": f"{3 * 1024 + 512}Mi"} == res["limits"]
    default = container(driver(minimal))["resources"]["limits"]
    assert default["memory"] == f"{1024 + 409}Mi", "overhead default max(384m, 40%)"
    small = job_of({"model": {"uri": "/m"}, "input": {"uri": "/i"}, "output": {"uri": "/o"},
                    "driver": {"memory": "512m"}})
    assert container(driver(small))["resources"]["limits"]["memory"] == f"{512 + 384}Mi"
    p = props(full)
    assert p["spark.driver.cores"] == "2" and p["spark.driver.memory"] == "3072m"


def test_activeDeadlineSeconds_is_also_enforced_by_the_pod(full, minimal):
    assert driver(full, deadline_seconds=99.5)["spec"]["activeDeadlineSeconds"] == 99
    assert driver(full, deadline_seconds=-3)["spec"]["activeDeadlineSeconds"] == 1
    assert "activeDeadlineSeconds" not in driver(minimal)["spec"]


@pytest.mark.parametrize("pod_of", [lambda job: driver(job), template], ids=["driver", "executor"])
def test_pods_meet_pod_security_restricted(full, pod_of):
    pod = pod_of(full)
    psc, csc = pod["spec"]["securityContext"], container(pod)["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 1000 and psc["seccompProfile"] == {
        "type": "RuntimeDefault"}
    assert csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]} and csc["runAsNonRoot"] is True
    assert csc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any("hostPath" in v for v in pod["spec"]["volumes"])


@pytest.mark.parametrize("pod_of", [lambda job: driver(job), template], ids=["driver", "executor"])
def test_scheduling_env_and_volumes_reach_driver_and_executors(full, pod_of):
    pod = pod_of(full)
    spec, c = pod["spec"], container(pod)
    assert spec["nodeSelector"] == {"pool": "gpu"}
    assert FULL_SPEC["tolerations"][0] in spec["tolerations"]
    assert spec["priorityClassName"] == "batch-high"
    env = {e["name"]: e for e in c["env"]}
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert env["TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "s3", "key": "token"}}
    assert c["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data"}} in spec["volumes"]
    assert {"name": "data", "mountPath": "/data", "readOnly": True} in c["volumeMounts"]
    assert spec["enableServiceLinks"] is False


def test_a_placement_adds_node_labels_tolerations_and_labels_never_replacing_tfscores(full, minimal):
    flavor = {"key": "tfscore.io/dedicated", "operator": "Equal", "value": "scoring", "effect": "NoSchedule"}
    place = builders.Placement(node_selector={"tfscore.io/pool": "a"}, tolerations=(flavor,),
                               labels={"kueue.x-k8s.io/podset": "driver", names.LABEL_JOB: "other"},
                               annotations={"example.com/x": "1"})
    pod = driver(full, placement=place)
    assert pod["spec"]["nodeSelector"] == {"pool": "gpu", "tfscore.io/pool": "a"}
    assert pod["spec"]["tolerations"] == [*FULL_SPEC["tolerations"], flavor]
    labels = pod["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/podset"] == "driver" and labels[names.LABEL_JOB] == "risk"
    assert pod["metadata"]["annotations"] == {"example.com/x": "1"}
    cm = builders.config_map(minimal, BODY, CONFIG, 1, placement=builders.Placement(tolerations=(flavor, flavor)))
    tpl = yaml.safe_load(cm["data"]["executor-pod-template.yaml"])
    assert tpl["spec"]["tolerations"] == [flavor] and "nodeSelector" not in tpl["spec"]
    assert driver(minimal) == driver(minimal, placement=None) and "priorityClassName" not in driver(minimal)["spec"]


def test_executor_template_gpu(full, minimal):
    tpl = template(full)
    c = tpl["spec"]["containers"][0]
    assert c["name"] == "executor" and c["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tpl["spec"]["tolerations"]
    assert tpl["spec"]["automountServiceAccountToken"] is False
    assert tpl["metadata"]["labels"][names.LABEL_ROLE] == "executor"
    cpu = template(minimal)
    assert "resources" not in cpu["spec"]["containers"][0] and "tolerations" not in cpu["spec"]
    assert "nvidia.com/gpu" not in json.dumps(driver(full)), "the driver never asks for GPUs"


def test_spark_properties(full):
    p = props(full, attempt=2)
    assert p["spark.master"] == "k8s://https://kubernetes.default.svc:443"
    assert p["spark.submit.deployMode"] == "client"
    assert p["spark.kubernetes.namespace"] == "scoring"
    assert p["spark.driver.host"] == "risk-driver.scoring.svc"
    assert p["spark.driver.port"] == "7078" and p["spark.driver.blockManager.port"] == "7079"
    assert p["spark.driver.bindAddress"] == "0.0.0.0"
    assert p["spark.kubernetes.driver.pod.name"] == "risk-driver-2", "executors are owned by this attempt's pod"
    assert p["spark.kubernetes.executor.podTemplateFile"] == "/etc/tfscore/executor-pod-template.yaml"
    assert p["spark.kubernetes.executor.deleteOnTermination"] == "true"
    assert p["spark.app.name"] == "risk"
    assert p["spark.executor.cores"] == "4" and p["spark.executor.memory"] == "6144m"
    assert p["spark.executor.memoryOverhead"] == f"{int(6144 * 0.4)}m"
    assert p["spark.kubernetes.executor.limit.cores"] == "4"
    plain = builders.spark_properties(job_of({**FULL_SPEC, "sparkConf": {}}), "scoring", 2, "img")
    assert "spark.kubernetes.executor.request.cores" not in plain, "Spark's default (spark.executor.cores); a job may lower it"
    assert "spark.executorEnv.TF_NUM_INTRAOP_THREADS" not in p, "TensorFlow's threads follow the task's cores"
    assert p["spark.executor.resource.gpu.amount"] == "2"
    assert p["spark.executor.resource.gpu.vendor"] == "nvidia.com"
    assert p["spark.executor.resource.gpu.discoveryScript"] == "/opt/tfscore/bin/gpu-discovery.sh"
    assert p["spark.task.resource.gpu.amount"] == "0.5"
    assert p["spark.local.dir"] == "/var/data/spark-local"
    assert p["spark.kubernetes.container.image.pullPolicy"] == "IfNotPresent", "Spark sets the executors' from this"


def test_spark_endpoints_are_closed_and_the_driver_stays_in_its_role(minimal):
    p = props(minimal)
    assert (p["spark.authenticate"], p["spark.network.crypto.enabled"]) == ("true", "true")
    assert p["spark.authenticate.secret.file"] == "/etc/tfscore-auth/spark-auth-secret", "a file, never env or args"
    assert "spark.executor.extraJavaOptions" not in p  # Spark refuses -Dspark.* there (INVALID_EXECUTOR_SPARK_OPTIONS)
    assert p["spark.executorEnv.TFSCORE_SPARK_MASTER"] == "k8s://https://kubernetes.default.svc:443", \
        "executors read the secret file only with a k8s:// master in their own conf"
    assert p["spark.ui.killEnabled"] == "false"
    assert p["spark.kubernetes.executor.disableConfigMap"] == "true", "the driver's Role has no configmaps"
    assert p["spark.kubernetes.driver.ownPersistentVolumeClaim"] == "false"
    assert p["spark.kubernetes.driver.reusePersistentVolumeClaim"] == "false"
    assert p["spark.kubernetes.driver.service.deleteOnTermination"] == "false"


def test_the_auth_secret_is_mounted_as_a_file_in_driver_and_executors(minimal):
    secret = {"name": "tfscore-auth", "secret": {"secretName": "risk-auth-abcde", "defaultMode": 0o440}}
    mount = {"name": "tfscore-auth", "mountPath": "/etc/tfscore-auth", "readOnly": True}
    pod = driver(minimal, auth_secret="risk-auth-abcde")
    cm = builders.config_map(minimal, BODY, CONFIG, 1, "risk-auth-abcde")
    tpl = yaml.safe_load(cm["data"]["executor-pod-template.yaml"])
    for spec in (pod["spec"], tpl["spec"]):
        assert secret in spec["volumes"] and mount in spec["containers"][0]["volumeMounts"]
        assert "risk-auth-abcde" not in json.dumps(spec["containers"][0].get("env", []))
    assert "tfscore-auth" not in json.dumps(driver(minimal)), "no Secret named: no volume (builders stay total)"


def test_spark_conf_is_applied_last(full):
    p = props(full)
    assert p["spark.sql.shuffle.partitions"] == "64"
    assert p["spark.kubernetes.executor.request.cores"] == "500m", "a job may lower its executors' CPU request"
    assert list(builders.spark_properties(full, "ns", 1, "img"))[-2:] == ["spark.sql.shuffle.partitions",
                                                                          "spark.kubernetes.executor.request.cores"]


def test_no_gpu_conf_without_gpus(minimal):
    assert not [k for k in props(minimal) if "gpu" in k]
    assert props(minimal)["spark.executor.instances"] == "2"


@pytest.mark.parametrize("gpu,cores,amount", [(1, 1, "1"), (1, 4, "0.25"), (2, 4, "0.5"), (4, 2, "2"), (3, 3, "1")])
def test_task_gpu_amount(gpu, cores, amount):
    assert builders.task_gpu_amount(gpu, cores) == amount


def test_properties_escape_user_strings_and_round_trip():
    tricky = {"spark.a": "x=y:z # not a comment", "spark.b": " leading space", "spark.c": "multi\nline\\back",
              "spark.key with=odd:chars": "ü ok", "spark.d": "!bang", "spark.e": "trailing  ", "spark.f": ""}
    text = properties.render(tricky, header="hello\nworld")
    assert text.startswith("# hello\n# world\n")
    assert len([line for line in text.splitlines() if not line.startswith("#")]) == len(tricky)
    assert properties.parse(text) == tricky


def test_properties_reader_follows_java_rules():
    text = ("# comment\n! also a comment\n\n  spark.a = 1\nspark.b:2\nspark.c 3\n"
            "spark.d=one \\\n    two\nspark.e=\\u00e9t\\u00e9\nspark.a=later wins\n")
    assert properties.parse(text) == {"spark.a": "later wins", "spark.b": "2", "spark.c": "3", "spark.d": "one two",
                                      "spark.e": "été"}


def test_config_map(full):
    cm = builders.config_map(full, BODY, CONFIG, 1)
    assert cm["metadata"]["name"] == "risk-spec-1" and cm["metadata"]["namespace"] == "scoring"
    assert cm["immutable"] is True, "one ConfigMap per attempt, never edited"
    assert builders.config_map(full, BODY, CONFIG, 2)["metadata"]["name"] == "risk-spec-2"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert set(cm["data"]) == {"job.json", "spark.properties", "executor-pod-template.yaml"}
    assert builders.config_map(full, BODY, CONFIG, 1) == cm, "pure: same input, same output"


def test_driver_service_is_headless_with_spark_ports(full):
    svc = builders.driver_service(full, BODY)
    assert svc["metadata"]["name"] == "risk-driver" and svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == {names.LABEL_JOB: "risk", names.LABEL_ROLE: "driver"}
    assert {p["port"]: p["name"] for p in svc["spec"]["ports"]} == {7078: "driver-rpc", 7079: "blockmanager",
                                                                      4040: "spark-ui"}
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["metadata"]["ownerReferences"][0]["controller"] is True


@pytest.mark.parametrize("name", ["a" * 63, "0day-scoring", "x" * 57])
def test_long_or_digit_led_names_still_make_valid_service_and_executor_names(name):
    import re

    svc, prefix = names.service_name(name), names.executor_prefix(name, 12)
    dns1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    assert dns1035.match(svc) and len(svc) <= 63
    assert dns1035.match(prefix) and len(prefix) <= 47
    assert names.service_name(name) == svc, "deterministic"
    assert names.service_name(name + "b") != svc or len(name) < 50
    assert names.service_name("risk") == "risk-driver"
