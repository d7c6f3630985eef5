"""reconcile + queued.py with in-memory stand-ins for the API server and Kueue's API: which Workload writes happen in
which order (the operator tier runs the same against a real API server and a real Kueue controller)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
import yaml

from tfscore.operator.config import OperatorConfig
from tfscore.operator.kube import Conflict, Rejected
from tfscore.operator.metrics import Metrics
from tfscore.operator.scoringjob import queueing
from tfscore.operator.scoringjob import reconcile as handlers
from unit.operator.scoringjob.test_reconcile import T0, FakeKube, add_job

FLAVOR = {"metadata": {"name": "pool-a"}, "spec": {"nodeLabels": {"tfscore.io/pool": "a"}, "tolerations": [
    {"key": "tfscore.io/dedicated", "operator": "Equal", "value": "scoring", "effect": "NoSchedule"}]}}


class FakeKueue:
    """Workloads by name; resourceVersions count up; the status parts Kueue would write are set by the test."""

    def __init__(self) -> None:
        self.workloads: dict[str, dict] = {}
        self.calls: list[str] = []
        self.rv = 1000
        self.classes = {"high": 1000}

    def _stamp(self, wl: dict) -> dict:
        self.rv += 1
        wl["metadata"]["resourceVersion"] = str(self.rv)
        wl["metadata"].setdefault("uid", f"wl-{self.rv}")
        wl["metadata"].setdefault("generation", 1)
        return copy.deepcopy(wl)

    def create_workload(self, body):
        self.calls.append("create Workload")
        name = body["metadata"]["name"]
        if name in self.workloads:
            return copy.deepcopy(self.workloads[name]), False
        self.workloads[name] = copy.deepcopy(body)
        return self._stamp(self.workloads[name]), True

    def get_workload(self, ns, name):
        return copy.deepcopy(self.workloads.get(name))

    def patch_workload(self, ns, name, patch):
        self.calls.append(f"patch Workload {json.dumps(patch['spec'], sort_keys=True)[:40]}")
        wl = self.workloads[name]
        wl["spec"].update(patch["spec"])
        for key in ("labels", "annotations"):
            wl["metadata"].setdefault(key, {}).update((patch.get("metadata") or {}).get(key) or {})
        return self._stamp(wl)

    def patch_workload_status(self, ns, name, patch):
        self.calls.append("release Workload")
        wl = self.workloads[name]
        if patch["metadata"]["resourceVersion"] != wl["metadata"]["resourceVersion"]:
            raise Conflict("stale")
        wl["status"].pop("admission", None)
        wl["status"]["conditions"] = patch["status"]["conditions"]
        return self._stamp(wl)

    def apply_workload_status(self, body):
        self.calls.append("finish Workload")
        wl = self.workloads[body["metadata"]["name"]]
        conds = {c["type"]: c for c in wl.setdefault("status", {}).get("conditions", [])}
        conds.update({c["type"]: c for c in body["status"]["conditions"]})
        wl["status"]["conditions"] = list(conds.values())
        return self._stamp(wl)

    def delete_workload(self, ns, name, uid):
        self.calls.append("delete Workload")
        self.workloads.pop(name, None)

    def resource_flavor(self, name):
        return copy.deepcopy(FLAVOR) if name == "pool-a" else None

    def priority_class(self, name):
        if name is None:
            return None
        if name not in self.classes:
            raise Rejected(f"PriorityClass {name} (spec.priorityClassName) does not exist")
        return name, self.classes[name]

    # ---- Kueue's part
    def admit(self, name: str) -> None:
        self.workloads[name]["status"] = {"conditions": [
            {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved", "message": "Quota reserved"},
            {"type": "Admitted", "status": "True", "reason": "Admitted", "message": "The workload is admitted"}],
            "admission": {"clusterQueue": "cq", "podSetAssignments": [
                {"name": "driver", "flavors": {"cpu": "pool-a"}}, {"name": "executor", "flavors": {"cpu": "pool-a"}}]}}
        self._stamp(self.workloads[name])

    def evict(self, name: str) -> None:
        self.workloads[name]["status"]["conditions"].append(
            {"type": "Evicted", "status": "True", "reason": "Preempted", "message": "Preempted to accommodate x"})
        self._stamp(self.workloads[name])


@pytest.fixture
def env():
    kube, kueue, events = FakeKube(), FakeKueue(), []
    ctx = handlers.Context(kube=kube, config=OperatorConfig(runtime_image="img@sha256:" + "1" * 64, kueue=True),
                           metrics=Metrics(), post_event=lambda obj, e: events.append(e), kueue=kueue)
    return kube, kueue, ctx, events


def queued_job(kube, name="j", queue="team-a", **spec) -> dict:
    body = add_job(kube, name, **spec)
    body["metadata"]["labels"] = {queueing.QUEUE_LABEL: queue}
    kube.objects[("ScoringJob", "ns", name)]["metadata"]["labels"] = dict(body["metadata"]["labels"])
    return body


def step(ctx, kube, kueue, name="j", pods=None, bound=None, now=T0):
    body = copy.deepcopy(kube.objects[("ScoringJob", "ns", name)])
    return handlers.reconcile(ctx, body, pods or {}, bound, now, copy.deepcopy(kueue.workloads))


def admitted(ctx, kube, kueue) -> tuple[str, handlers.Outcome]:
    """A queued job, its Workload admitted by "Kueue", and the reconcile that starts attempt 1."""
    queued_job(kube)
    step(ctx, kube, kueue)
    (name,) = kueue.workloads
    kueue.admit(name)
    return name, step(ctx, kube, kueue, now=T0 + timedelta(seconds=5))


def test_a_queued_job_gets_a_workload_and_waits(env):
    kube, kueue, ctx, events = env
    queued_job(kube, priorityClassName="high")
    out = step(ctx, kube, kueue)
    assert kube.calls == ["patch status j"] and kueue.calls == ["create Workload"], "no pod, no ConfigMap"
    (wl,) = kueue.workloads.values()
    assert wl["spec"]["priority"] == 1000 and wl["spec"]["queueName"] == "team-a"
    assert out.workload["metadata"]["name"] == wl["metadata"]["name"]
    st = out.job["status"]
    assert st["phase"] == "Queued" and st["message"].startswith("queued in LocalQueue team-a")
    assert [e.reason for e in events] == ["Queued"]


def test_invalid_never_gets_a_workload(env):
    kube, kueue, ctx, _ = env
    queued_job(kube, output={"uri": "/o", "passthrough": ["s"], "predictions": {"p": "s"}})
    out = step(ctx, kube, kueue)
    assert out.job["status"]["phase"] == "Failed" and kueue.calls == [] and not kueue.workloads


def test_admitted_runs_where_the_flavor_says_then_finishes_the_workload(env):
    kube, kueue, ctx, events = env
    name, out = admitted(ctx, kube, kueue)
    pod = kube.objects[("Pod", "ns", "j-driver-1")]
    assert pod["spec"]["nodeSelector"] == {"tfscore.io/pool": "a"}
    assert pod["spec"]["tolerations"][0]["key"] == "tfscore.io/dedicated"
    assert pod["metadata"]["labels"][queueing.PODSET_LABEL] == "driver"
    tpl = yaml.safe_load(kube.objects[("ConfigMap", "ns", "j-spec-1")]["data"]["executor-pod-template.yaml"])
    assert tpl["spec"]["nodeSelector"] == {"tfscore.io/pool": "a"} and tpl["metadata"]["labels"][
        queueing.PODSET_LABEL] == "executor"
    assert [e.reason for e in events][-2:] == ["Admitted", "Started"]
    waited = {s.name: s.value for s in ctx.metrics.queue_wait.collect()[0].samples}
    assert (waited["tfscore_queue_wait_seconds_count"], waited["tfscore_queue_wait_seconds_sum"]) == (1, 5.0)
    done = copy.deepcopy(out.pods[0])
    done["status"] = {"phase": "Succeeded", "containerStatuses": [{"name": "driver", "state": {"terminated": {
        "exitCode": 0, "message": json.dumps({"rowsIn": 1, "rowsOut": 1, "seconds": 1.0, "rowsPerSecond": 1.0,
                                              "outputUri": "/o"})}}}]}
    kueue.calls.clear()
    out = step(ctx, kube, kueue, pods={1: done}, bound=out.bound)
    assert out.job["status"]["phase"] == "Succeeded" and kueue.calls == ["finish Workload"]
    finished = {c["type"]: c for c in kueue.workloads[name]["status"]["conditions"]}["Finished"]
    assert (finished["status"], finished["reason"]) == ("True", "Succeeded")
    kueue.calls.clear()
    step(ctx, kube, kueue, pods={1: done}, bound=out.bound)
    assert kueue.calls == [], "finished once"


def test_eviction_deletes_the_pod_then_releases_once_it_is_gone(env):
    kube, kueue, ctx, events = env
    name, out = admitted(ctx, kube, kueue)
    running = copy.deepcopy(out.pods[0])
    running["status"] = {"phase": "Running", "containerStatuses": [{"name": "driver", "state": {"running": {}}}]}
    out = step(ctx, kube, kueue, pods={1: running}, bound=out.bound)
    kueue.evict(name)
    kueue.calls.clear()
    out = step(ctx, kube, kueue, pods={1: running}, bound=out.bound)
    assert "delete Pod j-driver-1" in kube.calls and kueue.calls == [], "quota kept until the pod is gone"
    assert out.job["status"]["phase"] == "Queued" and out.job["status"].get("failed", 0) == 0
    out = step(ctx, kube, kueue, pods={}, bound=out.bound)  # the GET of attempt 1 finds nothing now
    assert kueue.calls == ["release Workload"]
    conds = {c["type"]: c for c in kueue.workloads[name]["status"]["conditions"]}
    assert conds["QuotaReserved"]["status"] == "False" and "admission" not in kueue.workloads[name]["status"]
    assert ctx.metrics.evictions.labels("Preempted")._value.get() == 1
    assert "Evicted" in [e.reason for e in events]


def test_a_stale_workload_is_reread_before_release(env):
    kube, kueue, ctx, _ = env
    queued_job(kube)
    step(ctx, kube, kueue)
    (name,) = kueue.workloads
    kueue.admit(name)
    kueue.evict(name)
    stale = copy.deepcopy(kueue.workloads)
    kueue._stamp(kueue.workloads[name])  # Kueue wrote again meanwhile
    body = copy.deepcopy(kube.objects[("ScoringJob", "ns", "j")])
    handlers.reconcile(ctx, body, {}, None, T0, stale)
    assert kueue.calls[-1] == "release Workload"
    assert {c["type"]: c for c in kueue.workloads[name]["status"]["conditions"]}["Admitted"]["status"] == "False"


def test_suspend_deactivates_and_resume_reactivates(env):
    kube, kueue, ctx, _ = env
    queued_job(kube)
    step(ctx, kube, kueue)
    (name,) = kueue.workloads
    kube.objects[("ScoringJob", "ns", "j")]["spec"]["suspend"] = True
    out = step(ctx, kube, kueue)
    assert out.job["status"]["phase"] == "Suspended" and kueue.workloads[name]["spec"]["active"] is False
    kube.objects[("ScoringJob", "ns", "j")]["spec"]["suspend"] = False
    out = step(ctx, kube, kueue)
    assert out.job["status"]["phase"] == "Queued" and kueue.workloads[name]["spec"]["active"] is True


def test_an_edit_before_admission_updates_the_pod_sets(env):
    kube, kueue, ctx, _ = env
    queued_job(kube)
    step(ctx, kube, kueue)
    (name,) = kueue.workloads
    kueue.workloads[name]["status"] = {"conditions": [{"type": "QuotaReserved", "status": "False", "reason": "Pending"}]}
    kube.objects[("ScoringJob", "ns", "j")]["spec"]["executor"] = {"instances": 7}
    step(ctx, kube, kueue)
    assert kueue.workloads[name]["spec"]["podSets"][1]["count"] == 7
    kueue.calls.clear()
    step(ctx, kube, kueue)
    assert kueue.calls == [], "in sync: nothing written"


def test_a_missing_priority_class_is_said_and_retried(env):
    kube, kueue, ctx, events = env
    queued_job(kube, priorityClassName="nope")
    out = step(ctx, kube, kueue)
    assert not kueue.workloads and out.requeue_after == 15.0
    assert out.job["status"]["message"] == "PriorityClass nope (spec.priorityClassName) does not exist"
    assert [e.reason for e in events] == ["Queued", "QueueFailed"]


def test_with_the_integration_off_the_label_is_ignored_with_a_warning(env):
    kube, _, ctx, events = env
    off = handlers.Context(kube=kube, config=OperatorConfig(runtime_image="img@sha256:" + "1" * 64), metrics=Metrics(),
                           post_event=lambda obj, e: events.append(e))
    body = queued_job(kube)
    out = handlers.reconcile(off, body, {}, None, T0)
    assert out.job["status"]["attempts"] == 1 and [e.reason for e in events] == ["QueueIgnored", "Started"]


def test_removing_the_label_deletes_the_workload(env):
    kube, kueue, ctx, _ = env
    queued_job(kube)
    step(ctx, kube, kueue)
    kube.objects[("ScoringJob", "ns", "j")]["metadata"]["labels"] = {}
    out = step(ctx, kube, kueue)
    assert not kueue.workloads and out.workload_gone and out.job["status"]["attempts"] == 1
