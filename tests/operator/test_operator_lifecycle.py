"""The operator, for real, against a real API server: admission, the kubelet's reports, retries, deadlines, TTL,
suspend/resume, restart and garbage collection."""

from __future__ import annotations

import json

import pytest

from harness.common import wait_for
from harness.scoringjobs import Cluster, scoringjob

RESULT = {"rowsIn": 1000, "rowsOut": 990, "rowsQuarantined": 10, "seconds": 4.0, "rowsPerSecond": 250.0,
          "outputUri": "s3a://out/", "quarantineUri": "s3a://q/",
          "model": {"uri": "s3a://models/risk/", "version": "3", "fingerprint": "sha256:abc", "signature": "serving_default"}}


def test_create_makes_owned_children_with_deterministic_names(k8s: Cluster):
    job = k8s.create(scoringjob("risk", executor={"instances": 3, "cores": 2}))
    uid = job["metadata"]["uid"]
    pod = k8s.wait_pod("risk")
    meta = k8s.get("risk")["metadata"]
    assert not meta.get("finalizers"), "no finalizer: deleting never waits for the operator"
    assert not [a for a in meta.get("annotations") or {} if "kopf" in a], "kopf keeps no state on our objects"
    cm = k8s.core.read_namespaced_config_map("risk-spec-1", k8s.ns)
    svc = k8s.core.read_namespaced_service("risk-driver", k8s.ns)
    for obj in (pod, cm, svc):
        refs = obj.metadata.owner_references
        assert [(r.kind, r.name, r.uid, r.controller) for r in refs] == [("ScoringJob", "risk", uid, True)]
    doc = json.loads(cm.data["job.json"])
    assert doc["metadata"] == {"name": "risk", "namespace": k8s.ns, "uid": uid}
    assert doc["spec"]["executor"]["instances"] == 3
    assert "spark.kubernetes.driver.pod.name=risk-driver-1" in cm.data["spark.properties"]
    assert svc.spec.cluster_ip == "None"
    c = pod.spec.containers[0]
    assert c.args[:2] == ["tfscore", "run"] and not c.command and c.security_context.read_only_root_filesystem
    st = k8s.wait_phase("risk", "Pending")
    assert st["attempts"] == 1 and st["driverPod"] == "risk-driver-1" and st["observedGeneration"] == 1
    k8s.wait_event("risk", "Started")
    assert len(k8s.driver_pods("risk")) == 1


def test_driver_succeeds_with_result_and_progress(k8s: Cluster):
    k8s.create(scoringjob("ok"))
    k8s.wait_pod("ok")
    k8s.run_pod("ok-driver-1")
    k8s.wait_phase("ok", "Running")
    k8s.annotate_progress("ok-driver-1", {"rowsScored": 400, "tasksDone": 2, "tasksTotal": 5, "percent": 40})
    wait_for("progress in status", lambda: k8s.status("ok").get("progress", {}).get("rowsScored") == 400)
    k8s.finish_pod("ok-driver-1", 0, json.dumps(RESULT))
    st = k8s.wait_phase("ok", "Succeeded")
    assert st["result"]["rowsOut"] == 990 and st["result"]["rowsQuarantined"] == 10
    assert st["model"]["version"] == "3" and st["model"]["fingerprint"] == "sha256:abc"
    assert st["progress"]["percent"] == 100 and st["completionTime"]
    cond = {c["type"]: c for c in st["conditions"]}
    assert cond["Succeeded"]["status"] == "True" and cond["Running"]["status"] == "False"
    assert all(c.get("lastTransitionTime") for c in st["conditions"])
    for reason in ("Started", "Running", "Completed"):  # events are posted asynchronously
        k8s.wait_event("ok", reason)


def test_driver_fails_retries_with_backoff_then_fails(k8s: Cluster):
    k8s.create(scoringjob("flaky", backoffLimit=2))
    for attempt in (1, 2, 3):
        pod = k8s.wait_pod("flaky", attempt)
        k8s.run_pod(pod.metadata.name)
        k8s.finish_pod(pod.metadata.name, 3, f"attempt {attempt}: input column 'f1' missing in s3a://in/part-0")
    st = k8s.wait_phase("flaky", "Failed")
    assert st["attempts"] == 3 and st["failed"] == 3
    cond = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert cond["reason"] == "DriverFailed" and "attempt 3: input column 'f1' missing" in cond["message"]
    assert "backoffLimit 2" in st["message"]
    wait_for("two AttemptFailed events", lambda: [e.reason for e in k8s.events("flaky")].count("AttemptFailed") == 2)
    assert len(k8s.driver_pods("flaky")) == 3, "failed attempts keep their pods (logs)"
    assert not k8s.core.list_namespaced_pod(k8s.ns, label_selector="tfscore.io/job=flaky,tfscore.io/attempt=4").items


def test_backoff_delay_is_observed(k8s: Cluster):
    k8s.create(scoringjob("slow", backoffLimit=1))
    k8s.wait_pod("slow")
    k8s.finish_pod("slow-driver-1", 1, "boom")
    st = wait_for("nextAttemptTime", lambda: (s := k8s.status("slow")).get("nextAttemptTime") and s)
    assert st["phase"] == "Pending" and "retrying in 0.5s" in st["message"]
    second = k8s.wait_pod("slow", 2)
    assert second.metadata.creation_timestamp is not None


def test_active_deadline_fails_and_removes_pods(k8s: Cluster):
    k8s.create(scoringjob("late", activeDeadlineSeconds=3))
    pod = k8s.wait_pod("late")
    assert pod.spec.active_deadline_seconds and pod.spec.active_deadline_seconds <= 3
    k8s.run_pod("late-driver-1")
    st = k8s.wait_phase("late", "Failed", timeout=15)
    assert {c["type"]: c for c in st["conditions"]}["Failed"]["reason"] == "DeadlineExceeded"
    wait_for("driver pods removed", lambda: not k8s.driver_pods("late"))


@pytest.mark.parametrize("name,stuck,reason,detail", [
    ("nopull", "wait_pull_pod", "ImagePullBackOff", "Back-off pulling image"),
    ("nofit", "unschedulable_pod", "Unschedulable", "Insufficient nvidia.com/gpu"),
])
def test_startup_timeout_fails_with_the_pods_reason(k8s: Cluster, name, stuck, reason, detail):
    k8s.create(scoringjob(name, startupTimeoutSeconds=2, backoffLimit=0))
    k8s.wait_pod(name)
    getattr(k8s, stuck)(f"{name}-driver-1")  # the kubelet (or scheduler) reports why the pod cannot start
    st = k8s.wait_phase(name, "Failed", timeout=15)
    cond = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert cond["reason"] == reason and "startupTimeoutSeconds (2s)" in cond["message"] and detail in cond["message"]
    wait_for("the stuck pod removed", lambda: not k8s.driver_pods(name))


def test_ttl_deletes_the_finished_job_and_everything_it_owns(k8s: Cluster):
    k8s.create(scoringjob("brief", ttlSecondsAfterFinished=1))
    k8s.wait_pod("brief")
    k8s.finish_pod("brief-driver-1", 0, json.dumps(RESULT))
    k8s.wait_phase("brief", "Succeeded")
    wait_for("the ScoringJob deleted by TTL", lambda: not k8s.custom.list_namespaced_custom_object(
        "tfscore.io", "v1alpha1", k8s.ns, "scoringjobs")["items"], timeout=15)
    wait_for("children garbage-collected", lambda: not k8s.driver_pods("brief") and not [
        c for c in k8s.core.list_namespaced_config_map(k8s.ns).items if c.metadata.name == "brief-spec-1"], timeout=30)


def test_suspend_and_resume(k8s: Cluster):
    k8s.create(scoringjob("pause"))
    k8s.wait_pod("pause")
    k8s.run_pod("pause-driver-1")
    k8s.wait_phase("pause", "Running")
    k8s.patch("pause", {"suspend": True})
    st = k8s.wait_phase("pause", "Suspended")
    wait_for("driver pod stopped", lambda: not k8s.driver_pods("pause"))
    assert st["failed"] == 0
    k8s.patch("pause", {"suspend": False})
    k8s.wait_pod("pause", 2)
    st = k8s.wait_phase("pause", "Pending")
    assert st["attempts"] == 2 and st["failed"] == 0
    k8s.wait_event("pause", "Suspended")
    k8s.wait_event("pause", "Resumed")


def test_created_suspended_starts_nothing(k8s: Cluster):
    k8s.create(scoringjob("held", suspend=True))
    k8s.wait_phase("held", "Suspended")
    assert not k8s.driver_pods("held")
    k8s.patch("held", {"suspend": False})
    k8s.wait_pod("held", 1)


def test_spec_edit_after_start_is_ignored_with_an_event(k8s: Cluster):
    k8s.create(scoringjob("fixed", batchSize=100))
    k8s.wait_pod("fixed")
    k8s.patch("fixed", {"batchSize": 999, "executor": {"instances": 9}})
    k8s.wait_event("fixed", "SpecChangeIgnored")
    wait_for("observedGeneration 2", lambda: k8s.status("fixed").get("observedGeneration") == 2)
    cm = k8s.core.read_namespaced_config_map("fixed-spec-1", k8s.ns)
    assert json.loads(cm.data["job.json"])["spec"]["batchSize"] == 100, "never half-applied"
    k8s.finish_pod("fixed-driver-1", 1, "boom")  # the retry still runs the spec the job started with
    k8s.wait_pod("fixed", 2)
    cm = k8s.core.read_namespaced_config_map("fixed-spec-2", k8s.ns)
    assert json.loads(cm.data["job.json"])["spec"]["batchSize"] == 100
    assert "spark.executor.instances=2" in cm.data["spark.properties"]
    assert "spark.kubernetes.driver.pod.name=fixed-driver-2" in cm.data["spark.properties"]


def test_delete_removes_everything(k8s: Cluster):
    k8s.create(scoringjob("gone"))
    k8s.wait_pod("gone")
    k8s.delete("gone")

    def children_left() -> list[str]:
        left = [p.metadata.name for p in k8s.driver_pods("gone")]
        left += [c.metadata.name for c in k8s.core.list_namespaced_config_map(k8s.ns).items
                 if c.metadata.name == "gone-spec-1"]
        left += [s.metadata.name for s in k8s.core.list_namespaced_service(k8s.ns).items]
        return left

    wait_for("garbage collection of every child", lambda: not children_left(), timeout=30)


def test_pods_pass_pod_security_restricted_admission(k8s: Cluster):
    """The namespace enforces "restricted": the driver pod exists only because the API server admitted it; the executor
    pod template (Spark creates executors from it) is submitted as a pod with a server-side dry run, GPU variant too."""
    import yaml

    k8s.create(scoringjob("psa", executor={"gpu": 1}, tolerations=[{"key": "pool", "operator": "Exists"}],
                          volumes=[{"name": "data", "emptyDir": {}}],
                          volumeMounts=[{"name": "data", "mountPath": "/data"}]))
    k8s.wait_pod("psa")
    cm = k8s.core.read_namespaced_config_map("psa-spec-1", k8s.ns)
    template = yaml.safe_load(cm.data["executor-pod-template.yaml"])
    template["metadata"]["name"] = "psa-exec-dry-run"
    k8s.core.create_namespaced_pod(k8s.ns, template, dry_run="All")
    bad = {**template, "spec": {**template["spec"], "securityContext": {}}}
    bad["spec"]["containers"] = [{**template["spec"]["containers"][0], "securityContext": {}}]
    with pytest.raises(Exception, match="restricted"):
        k8s.core.create_namespaced_pod(k8s.ns, bad, dry_run="All")


def test_a_second_job_on_the_same_output_waits_until_the_first_finishes(k8s: Cluster):
    """Two jobs never write one output at once: the younger waits (OutputInUse naming the holder), then starts."""
    k8s.create(scoringjob("first", output={"uri": "s3a://shared/scores/"}))
    k8s.wait_pod("first")
    k8s.create(scoringjob("second", output={"uri": "s3://shared/./scores/day=1"}))  # the same place, spelled apart
    k8s.wait_event("second", "OutputInUse")
    st = k8s.status("second")
    cond = next(c for c in st["conditions"] if c["type"] == "OutputInUse")
    assert cond["status"] == "True" and f"active ScoringJob {k8s.ns}/first" in cond["message"]
    assert st["phase"] == "Pending" and not st.get("attempts") and not k8s.driver_pods("second")
    k8s.run_pod("first-driver-1")
    k8s.finish_pod("first-driver-1", 0, json.dumps(RESULT))
    k8s.wait_phase("first", "Succeeded")
    k8s.wait_pod("second", timeout=30)  # rechecked every few seconds
    # The reconcile creates the pod first and writes the status after it: a loaded CI machine read the status between.
    wait_for("OutputInUse False", lambda: next(c for c in k8s.status("second")["conditions"]
                                                if c["type"] == "OutputInUse")["status"] == "False")
