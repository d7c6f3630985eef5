"""The Kueue integration's pure half: the Workload a queued ScoringJob asks for, what Kueue's status means, the placement
an admission gives the pods, and the status writes back (shapes as Kueue v0.17.0 returned them, hack/cluster/KUEUE.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from tfscore.api import common, properties, scoringjob
from tfscore.api.scoringjob import ScoringJob
from tfscore.operator.config import OperatorConfig
from tfscore.operator.scoringjob import builders, names, queueing
from tfscore.operator.scoringjob.queueing import Plan, observe_workload, plan

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CONFIG = OperatorConfig(runtime_image="reg/runtime@sha256:" + "a" * 64, runtime_image_gpu="reg/gpu@sha256:" + "b" * 64)
BODY = {"apiVersion": common.API_VERSION, "kind": scoringjob.KIND,
        "metadata": {"name": "risk", "namespace": "ml", "uid": "uid-1", "labels": {queueing.QUEUE_LABEL: "team-a"}}}


def job(**spec) -> ScoringJob:
    return ScoringJob.model_validate({"apiVersion": common.API_VERSION, "kind": scoringjob.KIND,
                                      "metadata": {"name": "risk", "namespace": "ml"},
                                      "spec": {"model": {"uri": "/m"}, "input": {"uri": "/i"},
                                               "output": {"uri": "/o"}, **spec}})


def cond(type_: str, status: bool, reason: str = "", message: str = "") -> dict:
    return {"type": type_, "status": "True" if status else "False", "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T11:00:00Z"}


def workload(*conds: dict, admission: dict | None = None, active: bool = True, **meta) -> dict:
    status: dict = {"conditions": list(conds)}
    if admission is not None:
        status["admission"] = admission
    return {"apiVersion": queueing.API_VERSION, "kind": "Workload",
            "metadata": {"name": "scoringjob-risk-abcde", "namespace": "ml", "uid": "wl-uid", "generation": 1,
                         "resourceVersion": "42", **meta},
            "spec": {"queueName": "team-a", "active": active}, "status": status}


ADMISSION = {"clusterQueue": "cq", "podSetAssignments": [
    {"name": "driver", "count": 1, "flavors": {"cpu": "on-demand", "memory": "on-demand"}},
    {"name": "executor", "count": 2, "flavors": {"cpu": "spot", "memory": "spot", "nvidia.com/gpu": "a100"}}]}
ADMITTED = workload(cond("QuotaReserved", True, "QuotaReserved", "Quota reserved in ClusterQueue cq"),
                    cond("Admitted", True, "Admitted", "The workload is admitted"), admission=ADMISSION)
PREEMPTED_MSG = "Preempted to accommodate a workload (UID: u, JobUID: j) due to prioritization in the ClusterQueue"
EVICTED = workload(cond("QuotaReserved", True, "QuotaReserved"), cond("Admitted", True, "Admitted"),
                   cond("Evicted", True, "Preempted", PREEMPTED_MSG), cond("Preempted", True, "InClusterQueue"),
                   admission=ADMISSION)


# ---------------------------------------------------------------- the Workload


def test_queue_name_and_workload_name():
    assert queueing.queue_name(BODY) == "team-a"
    assert queueing.queue_name({"metadata": {"labels": {queueing.QUEUE_LABEL: " "}}}) is None
    assert queueing.queue_name({"metadata": {}}) is None
    name = queueing.workload_name("risk", "uid-1")
    assert name.startswith("scoringjob-risk-") and len(name) == len("scoringjob-risk-") + 5
    assert queueing.workload_name("risk", "uid-2") != name, "a re-created namesake gets its own Workload"


def test_pod_sets_carry_exactly_what_the_pods_will_request():
    j = job(driver={"cores": 2, "memory": "3g"}, executor={"instances": 3, "cores": 2, "memory": "2g"},
            priorityClassName="batch", nodeSelector={"pool": "a"})
    wl = queueing.build_workload(j, BODY, CONFIG, "team-a", ("batch", 500), active=True)
    driver, executor = wl["spec"]["podSets"]
    pod = builders.driver_pod(j, BODY, CONFIG, 1)
    assert (driver["name"], driver["count"]) == ("driver", 1)
    assert driver["template"]["spec"]["containers"][0]["resources"] == pod["spec"]["containers"][0]["resources"]
    assert driver["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "2", "memory": "4300Mi"}
    # Spark: cpu = spark.executor.cores, memory = 2048 MiB + max(384, 40% of it) overhead (builders.overhead_mib)
    assert (executor["name"], executor["count"]) == ("executor", 3)
    assert executor["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "2", "memory": "2867Mi"}, "limits": {"memory": "2867Mi", "cpu": "2"}}
    for ps in (driver, executor):
        spec = ps["template"]["spec"]
        assert spec["priorityClassName"] == "batch" and spec["nodeSelector"] == {"pool": "a"}
        assert spec["restartPolicy"] == "Never" and "volumes" not in spec, "only what Kueue reads"
    assert wl["spec"]["priorityClassRef"] == {"group": "scheduling.k8s.io", "kind": "PriorityClass", "name": "batch"}
    assert wl["spec"]["priority"] == 500 and wl["spec"]["queueName"] == "team-a" and wl["spec"]["active"] is True


def test_spark_conf_overrides_change_the_executor_requests_as_spark_applies_them():
    j = job(executor={"instances": 2, "cores": 1, "memory": "1g", "gpu": 1},
            sparkConf={"spark.kubernetes.executor.request.cores": "250m", "spark.executor.instances": "4",
                       "spark.executor.memoryOverhead": "1g", "spark.memory.offHeap.enabled": "true",
                       "spark.memory.offHeap.size": "512m"})
    executor = queueing.pod_sets(j, BODY, CONFIG)[1]
    res = executor["template"]["spec"]["containers"][0]["resources"]
    assert executor["count"] == 4, "spark.executor.instances from sparkConf wins, as in spark.properties"
    assert res["requests"] == {"cpu": "250m", "memory": f"{1024 + 1024 + 512}Mi", "nvidia.com/gpu": "1"}
    assert res["limits"] == {"memory": "2560Mi", "cpu": "1", "nvidia.com/gpu": "1"}
    assert executor["template"]["spec"]["containers"][0]["image"] == CONFIG.runtime_image_gpu
    cm = builders.config_map(j, BODY, CONFIG, 1)
    props = properties.parse(cm["data"]["spark.properties"])
    assert queueing.executor_resources(props) == res, "computed from the attempt's own spark.properties"
    tpl = yaml.safe_load(cm["data"]["executor-pod-template.yaml"])
    assert executor["template"]["spec"]["tolerations"] == tpl["spec"]["tolerations"]


@pytest.mark.parametrize("value,mib", [("2048", 2048), ("2048m", 2048), ("2g", 2048), ("1.5g", 1536), ("2Gi", 2048)])
def test_spark_memory_units(value, mib):
    assert queueing.spark_mib(value) == mib


def test_workload_metadata_owner_labels_and_no_priority():
    wl = queueing.build_workload(job(), BODY, CONFIG, "team-a", None, active=False)
    meta = wl["metadata"]
    assert wl["apiVersion"] == "kueue.x-k8s.io/v1beta2" and meta["namespace"] == "ml"
    assert meta["ownerReferences"] == [names.owner_reference(BODY)]
    assert meta["labels"][queueing.QUEUE_LABEL] == "team-a" and meta["labels"][queueing.JOB_UID_LABEL] == "uid-1"
    assert meta["labels"][names.LABEL_JOB] == "risk"
    assert "priorityClassRef" not in wl["spec"] and "priority" not in wl["spec"] and wl["spec"]["active"] is False
    assert meta["annotations"][queueing.SPEC_HASH] == queueing.spec_hash(
        "team-a", queueing.pod_sets(job(), BODY, CONFIG), None)


# ---------------------------------------------------------------- what Kueue says


def test_observe_pending_admitted_evicted_finished():
    assert observe_workload(None, "q").state == "absent"
    fresh = observe_workload(workload(), "q")
    assert (fresh.state, fresh.reason) == ("pending", "Created")
    msg = "couldn't assign flavors to pod set executor: insufficient unused quota for cpu in flavor f, 2 more needed"
    pending = observe_workload(workload(cond("QuotaReserved", False, "Pending", msg)), "q")
    assert (pending.state, pending.reason, pending.reserved) == ("pending", "Pending", False)
    assert pending.describe() == f"queued in LocalQueue q: {msg}"
    missing = observe_workload(workload(cond("QuotaReserved", False, "Inadmissible", "LocalQueue q doesn't exist")), "q")
    assert (missing.state, missing.reason) == ("pending", "Inadmissible")
    admitted = observe_workload(ADMITTED, "q")
    assert admitted.admitted and admitted.cluster_queue == "cq" and admitted.reserved
    assert admitted.message == "admitted by ClusterQueue cq"
    evicted = observe_workload(EVICTED, "q")
    assert (evicted.state, evicted.reason, evicted.message, evicted.reserved) == ("evicted", "Preempted",
                                                                               PREEMPTED_MSG, True)
    assert not evicted.admitted
    checks = observe_workload(workload(cond("QuotaReserved", True, "QuotaReserved"),
                                       cond("Admitted", False, "UnsatisfiedChecks", "waiting for provisioning")), "q")
    assert (checks.state, checks.reason, checks.reserved) == ("pending", "UnsatisfiedChecks", True)
    inactive = observe_workload(workload(active=False), "q")
    assert (inactive.state, inactive.reason) == ("pending", "Inactive")
    done = observe_workload(workload(cond("Finished", True, "Succeeded", "ok"), *ADMITTED["status"]["conditions"]), "q")
    assert done.state == "finished" and not done.admitted


def test_released_then_readmitted_workload_is_admitted_again():
    released = workload(cond("QuotaReserved", False, "Pending", PREEMPTED_MSG), cond("Admitted", False, "NoReservation"),
                        cond("Evicted", True, "Preempted", PREEMPTED_MSG), cond("Requeued", True, "Preempted"))
    view = observe_workload(released, "q")
    assert (view.state, view.reason, view.message) == ("pending", "Pending", PREEMPTED_MSG)
    again = workload(cond("QuotaReserved", True, "QuotaReserved"), cond("Admitted", True, "Admitted"),
                     cond("Evicted", False, "QuotaReserved", "Previously: " + PREEMPTED_MSG), admission=ADMISSION)
    assert observe_workload(again, "q").admitted


def test_placements_from_flavors_and_admission_check_updates():
    flavors = {
        "on-demand": {"spec": {"nodeLabels": {"pool": "od"}}},
        "spot": {"spec": {"nodeLabels": {"pool": "spot"}, "tolerations": [
            {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]}},
        "a100": {"spec": {"nodeLabels": {"gpu": "a100"}}},
    }
    wl = dict(ADMITTED, status={**ADMITTED["status"], "admissionChecks": [{"name": "prov", "state": "Ready",
        "podSetUpdates": [{"name": "executor", "labels": {"x": "1"}, "annotations": {"y": "2"},
                           "nodeSelector": {"zone": "z1"}, "tolerations": [{"key": "z", "operator": "Exists"}]}]}]})
    assert queueing.flavors_of(wl) == ["a100", "on-demand", "spot"]
    got = queueing.placements(wl, flavors)
    assert got["driver"] == builders.Placement({"pool": "od"}, (), {queueing.PODSET_LABEL: "driver"}, {})
    ex = got["executor"]
    assert ex.node_selector == {"gpu": "a100", "pool": "spot", "zone": "z1"}
    assert ex.tolerations == ({"key": "spot", "operator": "Exists", "effect": "NoSchedule"},
                              {"key": "z", "operator": "Exists"})
    assert ex.labels == {queueing.PODSET_LABEL: "executor", "x": "1"} and ex.annotations == {"y": "2"}
    assert queueing.placements(workload(), flavors) == {}


# ---------------------------------------------------------------- what the operator writes back


def test_release_patch_is_what_jobframework_writes():
    patch = queueing.release_patch(EVICTED, T0)
    assert patch["metadata"] == {"resourceVersion": "42"} and patch["status"]["admission"] is None
    conds = {c["type"]: c for c in patch["status"]["conditions"]}
    assert set(conds) == {"QuotaReserved", "Admitted", "Evicted", "Preempted", "Requeued"}
    assert (conds["QuotaReserved"]["status"], conds["QuotaReserved"]["reason"]) == ("False", "Pending")
    assert conds["QuotaReserved"]["message"] == PREEMPTED_MSG
    assert (conds["Admitted"]["status"], conds["Admitted"]["reason"]) == ("False", "NoReservation")
    assert (conds["Requeued"]["status"], conds["Requeued"]["reason"]) == ("True", "Preempted")
    assert conds["Evicted"] == EVICTED["status"]["conditions"][2], "Kueue's own conditions are kept as they are"
    assert conds["Admitted"]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert conds["Admitted"]["observedGeneration"] == 1
    stopped = workload(cond("QuotaReserved", True), cond("Evicted", True, "ClusterQueueStopped", "stopped"))
    requeued = {c["type"]: c for c in queueing.release_patch(stopped, T0)["status"]["conditions"]}["Requeued"]
    assert (requeued["status"], requeued["reason"]) == ("False", "ClusterQueueStopped"), "Kueue requeues it itself"


def test_finished_apply_body():
    body = queueing.finished_apply(ADMITTED, False, "attempt 3 failed", T0)
    assert body["metadata"] == {"name": "scoringjob-risk-abcde", "namespace": "ml"}
    assert body["status"]["conditions"] == [{"type": "Finished", "status": "True", "reason": "Failed",
                                             "message": "attempt 3 failed", "lastTransitionTime": "2026-01-01T12:00:00Z",
                                             "observedGeneration": 1}]
    assert queueing.finished_apply(ADMITTED, True, "", T0)["status"]["conditions"][0]["reason"] == "Succeeded"


def test_plan():
    assert plan(None, "q", "Queued", False, False, None) == Plan(create=True)
    assert plan(None, "q", "Suspended", True, False, None) == Plan(create=True)
    assert not plan(None, "q", "Failed", False, False, None), "an Invalid job never gets a Workload"
    assert plan(ADMITTED, "q", "Succeeded", False, False, None) == Plan(finish=True)
    assert plan(ADMITTED, "q", "Failed", False, False, None) == Plan(finish=False)
    finished = workload(cond("Finished", True, "Succeeded"))
    assert not plan(finished, "q", "Succeeded", False, False, None) and not plan(finished, None, "Running", False,
                                                                                  False, None)
    assert plan(ADMITTED, None, "Running", False, True, None) == Plan(delete=True), "label removed"
    assert not plan(ADMITTED, "q", "Running", False, True, "whatever"), "reserved: pod sets are immutable"
    assert plan(EVICTED, "q", "Queued", False, True, None) == Plan(), "pods still there: wait"
    assert plan(EVICTED, "q", "Queued", False, False, None) == Plan(release=True)
    assert plan(ADMITTED, "q", "Suspended", True, True, None) == Plan(active=False)
    pending = workload(cond("QuotaReserved", False, "Pending"), annotations={queueing.SPEC_HASH: "old"})
    assert plan(pending, "q", "Queued", False, False, "new") == Plan(update_spec=True)
    assert not plan(pending, "q", "Queued", False, False, "old")
    inactive = workload(cond("QuotaReserved", False, "Pending"), active=False)
    assert plan(inactive, "q", "Queued", False, False, None) == Plan(active=True), "resumed: reactivate"
    by_kueue = workload(cond("Evicted", True, "DeactivatedDueToMaximumExecutionTimeExceeded"), active=False)
    assert not plan(by_kueue, "q", "Queued", False, False, None), "Kueue deactivated it: not undone"
    ours = workload(cond("Evicted", True, "Deactivated"), active=False)
    assert plan(ours, "q", "Queued", False, False, None) == Plan(active=True)
