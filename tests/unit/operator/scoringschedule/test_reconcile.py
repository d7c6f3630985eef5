"""reconcile with an in-memory API server stand-in: the order of its calls, create-if-absent adoption, a stale view
re-read before Forbid skips, and conflicts (the operator tier runs the same against a real API server)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from tfscore.api.schedule_run import run_name
from tfscore.operator.kube import Conflict, Rejected
from tfscore.operator.scoringschedule import reconcile as handlers
from tfscore.operator.scoringschedule.clock import ScheduleClock
from tfscore.operator.scoringschedule.metrics import ScheduleMetrics

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


class FixedClock(ScheduleClock):
    def __init__(self, now: datetime) -> None:
        super().__init__(server=None)  # type: ignore[arg-type]
        self.t = now

    def now(self) -> datetime:
        return self.t


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict] = {}
        self.calls: list[str] = []
        self.rv = 100
        self.reject = False

    def _stamp(self, obj: dict) -> dict:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj["metadata"].setdefault("uid", f"uid-{self.rv}")
        return obj

    def create_run(self, body):
        name = body["metadata"]["name"]
        self.calls.append(f"create {name}")
        if self.reject:
            raise Rejected(f"cannot create ScoringJob {name}: exceeded quota")
        if ("ScoringJob", name) in self.objects:
            return copy.deepcopy(self.objects[("ScoringJob", name)]), False
        self.objects[("ScoringJob", name)] = self._stamp(copy.deepcopy(body))
        return copy.deepcopy(self.objects[("ScoringJob", name)]), True

    def get_job(self, ns, name):
        self.calls.append(f"get {name}")
        return copy.deepcopy(self.objects.get(("ScoringJob", name)))

    def delete_job(self, ns, name, uid):
        self.calls.append(f"delete {name}")
        self.objects.pop(("ScoringJob", name), None)

    def get_schedule(self, ns, name):
        self.calls.append("get schedule")
        return copy.deepcopy(self.objects.get(("ScoringSchedule", name)))

    def patch_schedule_status(self, ns, name, rv, patch):
        self.calls.append("patch status")
        obj = self.objects[("ScoringSchedule", name)]
        if obj["metadata"]["resourceVersion"] != rv:
            raise Conflict("stale")
        status = obj.setdefault("status", {})
        for k, v in patch.items():
            if v is None:
                status.pop(k, None)
            else:
                status[k] = v
        return copy.deepcopy(self._stamp(obj))


def setup(policy="Allow", now=T0 + timedelta(seconds=1)):
    kube, events = FakeKube(), []
    body = {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringSchedule",
            "metadata": {"name": "s", "namespace": "ns", "uid": "uid-s", "generation": 1,
                         "creationTimestamp": "2026-11-24T09:30:00Z"},
            "spec": {"schedule": "0 * * * *", "concurrencyPolicy": policy, "jobTemplate": {"spec": {
                "model": {"uri": "m"}, "input": {"uri": "i/${scheduledTime:%H}"}, "output": {"uri": "o"}}}}}
    kube.objects[("ScoringSchedule", "s")] = kube._stamp(body)
    ctx = handlers.Context(kube=kube, clock=FixedClock(now), metrics=ScheduleMetrics(CollectorRegistry()),
                           post_event=lambda obj, e: events.append(e.reason))
    return kube, ctx, events


def current(kube):
    return copy.deepcopy(kube.objects[("ScoringSchedule", "s")])


def runs_of(kube):
    return {k[1]: copy.deepcopy(v) for k, v in kube.objects.items() if k[0] == "ScoringJob"}


def test_create_first_record_in_a_second_pass_and_adopt_on_a_replay():
    kube, ctx, events = setup()
    out = handlers.reconcile(ctx, current(kube), {})
    name = run_name("s", T0)
    assert kube.calls == [f"create {name}"] and events == ["Started"] and out.followup, "the run first, status later"
    assert out.runs[0]["spec"]["input"]["uri"] == "i/10"
    assert "status" not in kube.objects[("ScoringSchedule", "s")]
    second = handlers.reconcile(ctx, current(kube), runs_of(kube))
    assert kube.calls == [f"create {name}", "patch status"] and not second.followup
    assert second.requeue_at == T0 + timedelta(hours=1) and events == ["Started"]
    st = kube.objects[("ScoringSchedule", "s")]["status"]
    assert st["lastScheduleTime"] == "2026-11-24T10:00:00Z" and st["activeCount"] == 1
    # the status write was lost (a crash): the replay finds the run by name and adopts it
    kube.objects[("ScoringSchedule", "s")]["status"] = {}
    kube.calls.clear()
    handlers.reconcile(ctx, current(kube), runs_of(kube))
    assert kube.calls == ["patch status"] and events == ["Started"], "adopted: no second create, no second event"


def test_create_409_adopts_an_owned_run():
    kube, ctx, events = setup()
    handlers.reconcile(ctx, current(kube), {})
    kube.calls.clear()
    out = handlers.reconcile(ctx, current(kube), {})  # the cache missed the run: create returns 409
    assert kube.calls == [f"create {run_name('s', T0)}", "patch status"] and events == ["Started"] and out.runs
    assert not out.followup
    assert ctx.metrics.registry.get_sample_value("tfscore_schedule_runs_started_total",
                                                 {"namespace": "ns", "schedule": "s"}) == 1


def test_forbid_rereads_an_active_run_before_skipping():
    kube, ctx, events = setup("Forbid", now=T0 + timedelta(hours=1, seconds=1))
    handlers.reconcile(ctx, current(kube), {})  # 11:00:01: the 11:00 run (10:00 is a missed time)
    handlers.reconcile(ctx, current(kube), runs_of(kube))
    first = run_name("s", T0 + timedelta(hours=1))
    cached = copy.deepcopy(kube.objects[("ScoringJob", first)])
    kube.objects[("ScoringJob", first)]["status"] = {"phase": "Succeeded"}  # finished; the cache does not know yet
    ctx.clock.t = T0 + timedelta(hours=2, seconds=1)
    kube.calls.clear()
    handlers.reconcile(ctx, current(kube), {first: cached})
    second = run_name("s", T0 + timedelta(hours=2))
    assert kube.calls == [f"get {first}", f"create {second}"], "re-read, then not skipped"
    assert "Skipped" not in events


def test_a_refused_create_retries_later_and_says_why():
    kube, ctx, events = setup()
    kube.reject = True
    out = handlers.reconcile(ctx, current(kube), {})
    st = kube.objects[("ScoringSchedule", "s")]["status"]
    assert out.retry_after == handlers.CREATE_RETRY_SECONDS and "CreateFailed" in events
    assert "lastScheduleTime" not in st and "exceeded quota" in st["message"]
    kube.reject = False
    assert handlers.reconcile(ctx, current(kube), {}).followup
    handlers.reconcile(ctx, current(kube), runs_of(kube))
    assert kube.objects[("ScoringSchedule", "s")]["status"]["lastScheduleTime"] == "2026-11-24T10:00:00Z"


def test_a_status_conflict_refreshes():
    kube, ctx, _ = setup()
    handlers.reconcile(ctx, current(kube), {})
    stale = current(kube)
    kube._stamp(kube.objects[("ScoringSchedule", "s")])  # someone else wrote meanwhile
    out = handlers.reconcile(ctx, stale, runs_of(kube))
    assert out.refresh and out.schedule["metadata"]["resourceVersion"] != stale["metadata"]["resourceVersion"]
    out2 = handlers.reconcile(ctx, out.schedule, runs_of(kube))
    assert not out2.refresh and kube.calls.count(f"create {run_name('s', T0)}") == 1
    assert kube.objects[("ScoringSchedule", "s")]["status"]["lastScheduleTime"] == "2026-11-24T10:00:00Z"


def test_an_invalid_schedule_says_so():
    kube, ctx, _ = setup()
    body = current(kube)
    body["spec"]["schedule"] = "61 * * * *"
    handlers.reconcile(ctx, body, {})
    st = kube.objects[("ScoringSchedule", "s")]["status"]
    assert "spec.schedule: minute field '61'" in st["message"] and not any(k[0] == "ScoringJob" for k in kube.objects)
