"""The schedule controller's caches and its admission hold (operator/scoringschedule/controller.py), without kopf."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from tfscore.operator.scoringschedule.clock import ScheduleClock
from tfscore.operator.scoringschedule.controller import HOLD_SECONDS, ScheduleController
from tfscore.operator.scoringschedule.metrics import ScheduleMetrics
from tfscore.operator.scoringschedule.reconcile import Context, Outcome

NOW = datetime.now(UTC)


class FixedClock(ScheduleClock):
    def __init__(self) -> None:
        super().__init__(server=None)  # type: ignore[arg-type]

    def now(self) -> datetime:
        return NOW


def controller() -> ScheduleController:
    ctx = Context(kube=None, clock=FixedClock(), metrics=ScheduleMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                  post_event=lambda *a: None)
    return ScheduleController(ctx, workers=1)


def run(name="s-1", schedule="s", status=None, born=None):
    born = born or datetime.now(UTC)  # admission_hold ages a run on the local clock: not NOW, taken at import
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": "5",
                         "labels": {"tfscore.io/schedule": schedule},
                         "creationTimestamp": born.strftime("%Y-%m-%dT%H:%M:%SZ")}, "status": status or {}}


def test_runs_wait_for_admission_only_while_a_due_schedule_has_not_created_its_run():
    c = controller()
    key = ("ns", "s")
    c._set_due(key, NOW - timedelta(seconds=1))  # due, run not created yet
    assert c.creating() and c.admission_hold(run()) == HOLD_SECONDS
    assert c.admission_hold({**run(), "metadata": {**run()["metadata"], "labels": {}}}) == 0, "not a run"
    assert c.admission_hold(run(status={"attempts": 1})) == 0, "already admitted"
    assert c.admission_hold(run(born=NOW - timedelta(minutes=5))) == 0, "held long enough"
    c._apply(key, {"metadata": {"namespace": "ns", "name": "s"}}, Outcome(followup=True))  # its run was created
    assert not c.creating() and c.admission_hold(run()) == 0
    c._set_due(key, NOW + timedelta(minutes=1))  # the next fire time is in the future
    assert not c.creating()


def test_run_events_reach_the_schedule_only_when_something_it_cares_about_changed():
    c = controller()
    c.schedules[("ns", "s")] = {"metadata": {"name": "s", "namespace": "ns", "resourceVersion": "1"}}
    assert c._store_run(None, run()) == ("ns", "s")
    progressed = run()
    progressed["metadata"]["resourceVersion"] = "6"
    progressed["metadata"]["annotations"] = {"note": "progress"}
    assert c._store_run("MODIFIED", progressed) is None, "progress alone is the run's own business"
    done = run(status={"phase": "Succeeded", "result": {"rowsOut": 1}})
    done["metadata"]["resourceVersion"] = "7"
    assert c._store_run("MODIFIED", done) == ("ns", "s")
    assert c._store_run("DELETED", done) == ("ns", "s") and ("ns", "s") not in c.runs
