"""Queued ScoringJobs with a real Kueue controller (v0.17.0) on the real API server: a ClusterQueue with quota for one
job at a time, admission order, preemption by priority, Invalid jobs holding nothing, withdrawal and deletion. The tests
play the kubelet for driver pods (no kubelet here) and read the Workloads Kueue itself manages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from timelines import TIMELINES

from harness.common import cluster_env, wait_for
from harness.kube import Kubectl
from harness.operator_process import Operator
from harness.scoringjobs import Cluster, scoringjob
from tfscore.operator.scoringjob import queueing

KUEUE = ("kueue.x-k8s.io", "v1beta2")
LOW, HIGH = "tfscore-test-low", "tfscore-test-high"
# Each job: driver 1 cpu + 1433Mi, one executor 1 cpu + 1433Mi (1g + 40% overhead) = 2 cpu, 2866Mi.
SMALL = {"driver": {"cores": 1, "memory": "1g"}, "executor": {"instances": 1, "cores": 1, "memory": "1g"}}
QUOTA = {"cpu": "3", "memory": "4Gi"}  # one job fits, two do not
RESULT = json.dumps({"rowsIn": 10, "rowsOut": 10, "seconds": 1.0, "rowsPerSecond": 10.0, "outputUri": "s3a://out/"})


def queued_job(name: str, **spec: Any) -> dict[str, Any]:
    body = scoringjob(name, **{**SMALL, **spec})
    body["metadata"]["labels"] = {queueing.QUEUE_LABEL: "lq"}
    return body


def workloads(k8s: Cluster, job: str) -> list[dict[str, Any]]:
    return k8s.custom.list_namespaced_custom_object(*KUEUE, k8s.ns, "workloads", label_selector=f"tfscore.io/job={job}")[
        "items"]


def workload(k8s: Cluster, job: str) -> dict[str, Any]:
    return wait_for(f"the Workload of {job}", lambda: (found := workloads(k8s, job)) and found[0])


def cond(wl: dict[str, Any], type_: str) -> str:
    c = next((c for c in (wl.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)
    return f"{c['status']}/{c['reason']}" if c else "none"


def wait_cond(k8s: Cluster, job: str, type_: str, want: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(f"{job}'s Workload {type_}={want}",
                    lambda: (wl := workload(k8s, job)) and cond(wl, type_) == want and wl, timeout=timeout)


def succeed(k8s: Cluster, job: str, attempt: int = 1) -> dict[str, Any]:
    pod = k8s.wait_pod(job, attempt).metadata.name
    k8s.run_pod(pod)
    k8s.wait_phase(job, "Running")
    k8s.finish_pod(pod, 0, RESULT)
    return k8s.wait_phase(job, "Succeeded")


@pytest.fixture(scope="module")
def priority_classes(api: Any, kueue: Any) -> Iterator[None]:
    from kubernetes import client

    scheduling = client.SchedulingV1Api(api)
    for name, value in ((LOW, 100), (HIGH, 1000)):
        scheduling.create_priority_class({"metadata": {"name": name}, "value": value})
    try:
        yield
    finally:
        for name in (LOW, HIGH):
            scheduling.delete_priority_class(name)


@pytest.fixture
def queue(kueue: Any, priority_classes: None, k8s: Cluster) -> Iterator[dict[str, Any]]:
    """ResourceFlavor (node labels + a toleration), a ClusterQueue for this namespace with quota for one job and
    preemption by priority, and LocalQueue `lq` pointing at it."""
    name = f"tfscore-{k8s.ns}"
    flavor = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": name}, "spec": {
        "nodeLabels": {"tfscore.io/pool": k8s.ns},
        "tolerations": [{"key": "tfscore.io/dedicated", "operator": "Equal", "value": "scoring", "effect": "NoSchedule"}]}}
    cq = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": name}, "spec": {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": k8s.ns}},
        "preemption": {"withinClusterQueue": "LowerPriority"},
        "resourceGroups": [{"coveredResources": ["cpu", "memory"], "flavors": [{"name": name, "resources": [
            {"name": r, "nominalQuota": q} for r, q in QUOTA.items()]}]}]}}
    lq = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "metadata": {"name": "lq"},
          "spec": {"clusterQueue": name}}
    k8s.custom.create_cluster_custom_object(*KUEUE, "resourceflavors", flavor)
    k8s.custom.create_cluster_custom_object(*KUEUE, "clusterqueues", cq)
    k8s.custom.create_namespaced_custom_object(*KUEUE, k8s.ns, "localqueues", lq)
    wait_for("the ClusterQueue Active", lambda: any(
        c["type"] == "Active" and c["status"] == "True" for c in (k8s.custom.get_cluster_custom_object(
            *KUEUE, "clusterqueues", name).get("status") or {}).get("conditions") or []))
    try:
        yield flavor
    finally:  # Kueue keeps a ClusterQueue until its Workloads are gone (namespace deletion): delete without waiting
        for plural in ("clusterqueues", "resourceflavors"):
            try:
                k8s.custom.delete_cluster_custom_object(*KUEUE, plural, name)
            except Exception:  # noqa: BLE001 - best effort; the control plane is disposable
                pass


def test_two_jobs_under_a_one_job_quota_run_one_after_the_other(k8s: Cluster, queue: dict[str, Any],
                                                                 kubeconfig: str, operator: Operator,
                                                                 request: pytest.FixtureRequest):
    t0, timeline = time.monotonic(), []

    def mark(what: str) -> None:
        timeline.append((what, round(time.monotonic() - t0, 2)))

    k8s.create(queued_job("a"))
    mark("a created")
    wait_cond(k8s, "a", "Admitted", "True/Admitted")
    mark("a admitted (Workload Admitted=True)")
    pod = k8s.wait_pod("a")
    mark("a driver pod created")
    k8s.create(queued_job("b"))
    mark("b created")
    st = k8s.wait_phase("b", "Queued")
    mark("b Queued")
    wait_for("Kueue's reason in b's status", lambda: "insufficient unused quota" in k8s.status("b")["message"])
    assert st["attempts"] == 0 and not k8s.driver_pods("b")
    assert "queued in LocalQueue lq" in k8s.status("b")["message"]
    k8s.wait_event("b", "Queued")
    table = Kubectl(cluster_env()["KUBECTL"], kubeconfig)("-n", k8s.ns, "get", "sj").stdout.splitlines()
    phases = dict(line.split()[:2] for line in table[1:])
    assert table[0].split()[:2] == ["NAME", "PHASE"] and phases == {"a": "Pending", "b": "Queued"}, table
    # the flavor's placement on the driver and in the executor template; the pod sets as the pods request them
    assert pod.spec.node_selector == {"tfscore.io/pool": k8s.ns}
    assert "tfscore.io/dedicated" in [t.key for t in pod.spec.tolerations]
    template = k8s.core.read_namespaced_config_map("a-spec-1", k8s.ns).data["executor-pod-template.yaml"]
    assert f"tfscore.io/pool: {k8s.ns}" in template and "tfscore.io/dedicated" in template
    wl = workload(k8s, "a")
    assert pod.spec.containers[0].resources.requests == wl["spec"]["podSets"][0]["template"]["spec"]["containers"][0][
        "resources"]["requests"] == {"cpu": "1", "memory": "1433Mi"}
    assert wl["metadata"]["ownerReferences"][0]["name"] == "a" and wl["spec"]["podSets"][1]["count"] == 1

    k8s.run_pod("a-driver-1")
    k8s.wait_phase("a", "Running")
    mark("a Running")
    k8s.finish_pod("a-driver-1", 0, RESULT)
    k8s.wait_phase("a", "Succeeded")
    mark("a Succeeded")
    wait_cond(k8s, "a", "Finished", "True/Succeeded")
    mark("a's Workload Finished (quota released)")
    wait_cond(k8s, "b", "Admitted", "True/Admitted")
    mark("b admitted")
    k8s.wait_pod("b")
    mark("b driver pod created")
    k8s.run_pod("b-driver-1")
    k8s.wait_phase("b", "Running")
    mark("b Running")
    k8s.finish_pod("b-driver-1", 0, RESULT)
    st = k8s.wait_phase("b", "Succeeded")
    mark("b Succeeded")
    wait_cond(k8s, "b", "Finished", "True/Succeeded")
    mark("b's Workload Finished")
    assert (st["attempts"], st.get("failed", 0)) == (1, 0)
    queued = next(c for c in st["conditions"] if c["type"] == "Queued")
    assert (queued["status"], queued["reason"]) == ("False", "Admitted")
    k8s.wait_event("b", "Admitted")
    metrics = operator.metrics()
    assert "tfscore_queue_wait_seconds_count" in metrics and "tfscore_queue_admissions_total" in metrics
    TIMELINES[request.node.name] = timeline


def test_a_higher_priority_job_preempts_a_running_one_which_runs_again_later(k8s: Cluster, queue: dict[str, Any],
                                                                            operator: Operator):
    k8s.create(queued_job("low", priorityClassName=LOW))
    k8s.wait_pod("low")
    k8s.run_pod("low-driver-1")
    k8s.wait_phase("low", "Running")
    assert workload(k8s, "low")["spec"]["priority"] == 100
    k8s.create(queued_job("high", priorityClassName=HIGH))
    st = k8s.wait_phase("low", "Queued")
    wait_for("the evicted attempt's driver pod deleted", lambda: not k8s.driver_pods("low"))
    assert (st["attempts"], st.get("failed", 0)) == (1, 0), "an eviction is not a failure"
    event = k8s.wait_event("low", "Evicted")
    assert "Preempted" in event.message and "not counted against backoffLimit" in event.message
    wait_cond(k8s, "low", "Requeued", "True/Preempted")  # our acknowledgement, as jobframework writes it
    k8s.wait_pod("high")
    assert workload(k8s, "high")["spec"]["priority"] == 1000
    pod = k8s.wait_pod("high")
    assert pod.spec.priority_class_name == HIGH and pod.spec.priority == 1000
    succeed(k8s, "high")
    pod = k8s.wait_pod("low", 2)
    assert pod.spec.priority_class_name == LOW
    st = succeed(k8s, "low", attempt=2)
    assert (st["attempts"], st.get("failed", 0)) == (2, 0)
    assert 'tfscore_queue_evictions_total{reason="Preempted"}' in operator.metrics()


def test_an_invalid_job_never_holds_quota(k8s: Cluster, queue: dict[str, Any]):
    k8s.create(queued_job("bad", output={"uri": "s3a://o/", "passthrough": ["s"], "predictions": {"p": "s"}}))
    st = k8s.wait_phase("bad", "Failed")
    assert {c["type"]: c for c in st["conditions"]}["Failed"]["reason"] == "Invalid"
    k8s.create(queued_job("good"))
    k8s.wait_pod("good")  # admitted at once: the quota is all there
    assert not workloads(k8s, "bad"), "an Invalid job never gets a Workload"


def test_suspending_a_queued_job_withdraws_it_and_deleting_one_deletes_its_workload(k8s: Cluster,
                                                                                   queue: dict[str, Any]):
    k8s.create(queued_job("a"))
    k8s.wait_pod("a")
    k8s.create(queued_job("b"))
    k8s.create(queued_job("c"))
    k8s.wait_phase("b", "Queued")
    k8s.wait_phase("c", "Queued")
    k8s.patch("b", {"suspend": True})
    k8s.wait_phase("b", "Suspended")
    wait_for("b's Workload inactive", lambda: workload(k8s, "b")["spec"]["active"] is False)
    c_workload = workload(k8s, "c")["metadata"]["name"]
    k8s.delete("c")
    wait_for("c's Workload garbage-collected with c", lambda: not [
        w for w in k8s.custom.list_namespaced_custom_object(*KUEUE, k8s.ns, "workloads")["items"]
        if w["metadata"]["name"] == c_workload], timeout=30)
    succeed(k8s, "a")
    time.sleep(2)  # b is withdrawn: a's quota is free, yet nothing of b starts
    assert k8s.status("b")["phase"] == "Suspended" and not k8s.driver_pods("b")
    k8s.patch("b", {"suspend": False})
    wait_for("b's Workload active again", lambda: workload(k8s, "b")["spec"]["active"] is True)
    succeed(k8s, "b")


def test_without_the_label_nothing_waits(k8s: Cluster, queue: dict[str, Any]):
    k8s.create(queued_job("a"))
    k8s.wait_pod("a")
    k8s.create(scoringjob("free", **SMALL))  # beyond the quota, but not queued: it runs
    k8s.wait_pod("free")
    assert not workloads(k8s, "free")
