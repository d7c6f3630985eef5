"""handlers.reconcile with an in-memory API server stand-in: the order and idempotency of what the operator writes, and
the validation messages it reports (the operator tier runs the same against a real API server)."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from tfscore.api import common, scoringjob
from tfscore.operator.config import OperatorConfig
from tfscore.operator.kube import Conflict, Rejected
from tfscore.operator.metrics import Metrics
from tfscore.operator.scoringjob import reconcile as handlers

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeKube:
    """Objects by (kind, namespace, name); resourceVersions count up; create is create-if-absent like the real one."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.calls: list[str] = []
        self.rv = 100
        self.reject: set[str] = set()

    def _stamp(self, obj: dict) -> dict:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj["metadata"].setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        obj["metadata"].setdefault("uid", f"uid-{self.rv}")
        return obj

    def create(self, body: dict):
        kind, meta = body["kind"], body["metadata"]
        self.calls.append(f"create {kind} {meta.get('name') or meta['generateName']}")
        if kind in self.reject:
            raise Rejected(f"cannot create {kind} {meta.get('name') or meta['generateName']}: forbidden")
        if "generateName" in meta:
            meta = body["metadata"] = {**meta, "name": f"{meta['generateName']}{self.rv:05d}"[-63:]}
        key = (kind, meta["namespace"], meta["name"])
        if key in self.objects:
            return copy.deepcopy(self.objects[key]), False
        self.objects[key] = self._stamp(copy.deepcopy(body))
        return copy.deepcopy(self.objects[key]), True

    def get(self, kind: str, ns: str, name: str):
        self.calls.append(f"get {kind} {name}")
        obj = self.objects.get((kind, ns, name))
        return copy.deepcopy(obj) if obj else None

    def delete_config_map(self, ns, name, uid):
        self.calls.append(f"delete ConfigMap {name}")
        self.objects.pop(("ConfigMap", ns, name), None)

    def get_policy(self, ns, name):
        self.calls.append(f"get ScoringPolicy {name}")
        return copy.deepcopy(self.objects.get(("ScoringPolicy", ns, name)))

    def delete_pod(self, ns, name):
        self.calls.append(f"delete Pod {name}")
        self.objects.pop(("Pod", ns, name), None)

    def get_job(self, ns, name):
        self.calls.append(f"get ScoringJob {name}")
        return copy.deepcopy(self.objects.get(("ScoringJob", ns, name)))

    def patch_job_status(self, ns, name, rv, patch):
        self.calls.append(f"patch status {name}")
        job = self.objects[("ScoringJob", ns, name)]
        if job["metadata"]["resourceVersion"] != rv:
            raise Conflict("stale")
        status = job.setdefault("status", {})
        for k, v in patch.items():
            if v is None:
                status.pop(k, None)
            else:
                status[k] = v
        return copy.deepcopy(self._stamp(job))

    def delete_job(self, ns, name, uid):
        self.calls.append(f"delete ScoringJob {name}")
        self.objects.pop(("ScoringJob", ns, name), None)


@pytest.fixture
def env():
    kube, events = FakeKube(), []
    ctx = handlers.Context(kube=kube, config=OperatorConfig(runtime_image="img@sha256:" + "1" * 64),
                           metrics=Metrics(), post_event=lambda obj, e: events.append(e))
    return kube, ctx, events


def add_job(kube: FakeKube, name: str = "j", **spec) -> dict:
    body = {"apiVersion": common.API_VERSION, "kind": scoringjob.KIND,
            "metadata": {"name": name, "namespace": "ns", "generation": 1},
            "spec": {"model": {"uri": "s3a://m/"}, "input": {"uri": "s3a://i/"}, "output": {"uri": "s3a://o/"}, **spec}}
    kube.objects[("ScoringJob", "ns", name)] = kube._stamp(body)
    return copy.deepcopy(body)


def test_first_reconcile_creates_children_then_writes_status(env):
    kube, ctx, events = env
    body = add_job(kube)
    out = handlers.reconcile(ctx, body, {}, None, T0)
    assert kube.calls == ["create Secret j-auth-", "create NetworkPolicy j-pods", "create ConfigMap j-spec-1",
                          "create Service j-driver", "create Pod j-driver-1", "patch status j"]
    status = out.job["status"]
    pod = kube.objects[("Pod", "ns", "j-driver-1")]
    assert status["driverPodUid"] == pod["metadata"]["uid"], "the one pod it created"
    assert status["authSecret"].startswith("j-auth-") and ("Secret", "ns", status["authSecret"]) in kube.objects
    cm = kube.objects[("ConfigMap", "ns", "j-spec-1")]
    assert status["specHash"] == "sha256:" + hashlib.sha256(cm["data"]["job.json"].encode()).hexdigest()
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["TFSCORE_SPEC_SHA256"].startswith("sha256:"), "the runtime can verify what it mounted"
    assert [e.reason for e in events] == ["Started"]
    assert out.job["status"]["attempts"] == 1 and out.pods[0]["metadata"]["name"] == "j-driver-1"
    assert out.bound is not None and out.requeue_after == 600
    # Again with what it wrote: nothing to do, no API calls.
    kube.calls.clear()
    again = handlers.reconcile(ctx, out.job, {1: out.pods[0]}, out.bound, T0 + timedelta(seconds=1))
    assert kube.calls == [] and again.job is None


def test_a_half_done_admission_is_adopted_not_duplicated(env):
    kube, ctx, _ = env
    body = add_job(kube)
    handlers.reconcile(ctx, body, {}, None, T0)  # children exist, status written …
    kube.objects[("ScoringJob", "ns", "j")].pop("status")  # … but pretend the status write was lost
    fresh = copy.deepcopy(kube.objects[("ScoringJob", "ns", "j")])
    kube.calls.clear()
    out = handlers.reconcile(ctx, fresh, {}, None, T0)
    pod = kube.objects[("Pod", "ns", "j-driver-1")]
    assert sum(1 for k in kube.objects if k[0] == "Pod") == 1
    assert out.job["status"]["attempts"] == 1 and out.pods[0]["metadata"]["uid"] == pod["metadata"]["uid"]


def test_stale_view_is_refreshed(env):
    kube, ctx, _ = env
    body = add_job(kube)
    kube.objects[("ScoringJob", "ns", "j")]["metadata"]["resourceVersion"] = "999"  # someone wrote meanwhile
    out = handlers.reconcile(ctx, body, {}, None, T0)
    assert out.refresh and out.job["metadata"]["resourceVersion"] == "999"


def test_a_rejected_pod_is_reported_retried_and_fails_after_the_startup_timeout(env):
    kube, ctx, events = env
    kube.reject.add("Pod")
    out = handlers.reconcile(ctx, add_job(kube, startupTimeoutSeconds=60), {}, None, T0)
    assert [e.reason for e in events] == ["CreateFailed"] and "forbidden" in events[0].message
    assert out.requeue_after == 15
    status = kube.objects[("ScoringJob", "ns", "j")]["status"]
    assert status["message"].startswith("cannot create Pod j-driver-1") and status["phase"] == "Pending"
    assert status["startTime"] == "2026-01-01T00:00:00Z", "persisted: a restarted operator keeps the clock"
    secret = status["authSecret"]
    out = handlers.reconcile(ctx, copy.deepcopy(kube.objects[("ScoringJob", "ns", "j")]), {}, None,
                             T0 + timedelta(seconds=50))
    assert out.requeue_after == 10, "no later than the deadline"
    assert kube.objects[("ScoringJob", "ns", "j")]["status"]["authSecret"] == secret, "one Secret, reused"
    assert [e.reason for e in events] == ["CreateFailed"], "one event per distinct message"
    handlers.reconcile(ctx, copy.deepcopy(kube.objects[("ScoringJob", "ns", "j")]), {}, None, T0 + timedelta(seconds=61))
    status = kube.objects[("ScoringJob", "ns", "j")]["status"]
    cond = {c["type"]: c for c in status["conditions"]}["Failed"]
    assert status["phase"] == "Failed" and cond["reason"] == "CreateRejected"
    assert "startupTimeoutSeconds (60s)" in cond["message"] and "cannot create Pod j-driver-1: forbidden" in cond["message"]
    assert [e.reason for e in events][-1] == "CreateRejected"
    assert sum(1 for k in kube.objects if k[0] == "Secret") == 1


def test_retry_uses_the_bound_spec_in_a_new_attempts_config_map(env):
    kube, ctx, _ = env
    body = add_job(kube, backoffLimit=1)
    out = handlers.reconcile(ctx, body, {}, None, T0)
    failed = copy.deepcopy(out.pods[0])
    failed["status"] = {"phase": "Failed", "containerStatuses": [
        {"name": "driver", "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "boom"}}}]}
    live = copy.deepcopy(out.job)
    live["spec"]["batchSize"], live["metadata"]["generation"] = 7, 2  # an edit after start
    kube.objects[("ScoringJob", "ns", "j")] = copy.deepcopy(live)
    out = handlers.reconcile(ctx, live, {1: failed}, None, T0 + timedelta(seconds=1))  # bound spec from ConfigMap
    assert out.job["status"]["failed"] == 1
    out = handlers.reconcile(ctx, out.job, {1: failed}, out.bound, T0 + timedelta(seconds=20))
    cm = kube.objects[("ConfigMap", "ns", "j-spec-2")]["data"]
    assert json.loads(cm["job.json"])["spec"]["batchSize"] == 4096, "the edit is not half-applied"
    assert "spark.kubernetes.driver.pod.name=j-driver-2" in cm["spark.properties"]
    assert ("Pod", "ns", "j-driver-2") in kube.objects


@pytest.mark.parametrize("spec,expected", [
    ({"output": {"uri": "/o", "mode": "replace"}}, "spec.output.mode: Input should be 'errorIfExists', 'overwrite' or"),
    ({"batchSize": 0}, "spec.batchSize: Input should be greater than or equal to 1"),
    ({"onInvalidRow": "quarantine"}, "quarantineUri is required when onInvalidRow is quarantine"),
    ({"output": {"uri": "/o", "passthrough": ["s"], "predictions": {"p": "s"}}},
     "output.passthrough and output.predictions both name column(s) ['s']"),
    ({"input": {"uri": "/i", "reader": "arrow", "where": "x > 1"}}, "spec.input: input.reader 'arrow'"),
    ({"executor": {"memory": "lots"}}, "spec.executor.memory: String should match pattern"),
    ({"surprise": 1}, "spec.surprise: unknown field"),
])
def test_validation_messages_name_the_field(spec, expected):
    body = {"apiVersion": common.API_VERSION, "kind": scoringjob.KIND, "metadata": {"name": "j", "namespace": "ns"},
            "spec": {"model": {"uri": "/m"}, "input": {"uri": "/i"}, "output": {"uri": "/o"}, **spec}}
    job, message = handlers.validate(body)
    assert job is None and expected in message


def test_pods_of_a_deleted_namesake_are_not_attempts(env):
    """A ScoringJob re-created under the name of one just deleted: the old driver pods (garbage collection still running)
    carry the same job label but another owner; they must not count as this job's attempts or failures."""
    kube, ctx, _ = env
    body = add_job(kube)
    old = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "j-driver-2", "namespace": "ns", "uid": "old-pod", "labels": {"tfscore.io/job": "j", "tfscore.io/attempt": "2"},
        "ownerReferences": [{"kind": scoringjob.KIND, "name": "j", "uid": "uid-of-the-deleted-job", "controller": True}]},
        "status": {"phase": "Failed"}}
    out = handlers.reconcile(ctx, body, {2: old}, None, T0)
    status = out.job["status"]
    assert (status["attempts"], status.get("failed", 0)) == (1, 0)
    assert [p["metadata"]["name"] for p in out.pods] == ["j-driver-1"]
