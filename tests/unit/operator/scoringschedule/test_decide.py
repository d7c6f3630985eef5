"""A ScoringSchedule's decision as a pure function: status + runs + now → Decision (CronJob's rules, tfscore's runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tfscore.api.contract import IncrementalResult, Result
from tfscore.api.schedule_run import run_name
from tfscore.api.scoringschedule import ScoringSchedule, ScoringScheduleStatus
from tfscore.api.statistics import ColumnStatistics, Drift, PredictionStatistics
from tfscore.operator.scoringschedule import builders
from tfscore.operator.scoringschedule.decide import Decision, Observed, create_failed, decide
from tfscore.operator.scoringschedule.runs import RunView

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
BODY = {"metadata": {"name": "s", "namespace": "ns", "uid": "uid-s"}}
TEMPLATE = {"model": {"uri": "s3a://m/"}, "input": {"uri": "s3a://in/dt=${scheduledTime:%Y-%m-%d}/h=${scheduledTime:%H}/"},
            "output": {"uri": "s3a://out/${scheduledTime:%Y%m%d%H}/"}}


def schedule(**spec) -> ScoringSchedule:
    template = spec.pop("template", {})
    return ScoringSchedule.model_validate({
        "apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringSchedule", "metadata": {"name": "s", "namespace": "ns"},
        "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {**TEMPLATE, **template}}, **spec}})


def run(t: datetime, phase="Running", result=None, reason=None, deleting=False) -> RunView:
    return RunView(name=run_name("s", t), scheduled_time=t, phase=phase, result=result, reason=reason,
                   deleting=deleting, completion_time=t + timedelta(minutes=5) if phase in ("Succeeded", "Failed")
                   else None)


def result(t: datetime, rows=10, watermark=None, drift=None) -> Result:
    stats = PredictionStatistics(columns={"p": ColumnStatistics(count=rows, mean=0.5, quantiles={"p50": 0.4})},
                                 drift=drift or {})
    inc = IncrementalResult(partition_key="dt", partitions=[watermark] if watermark else [], watermark=watermark)
    return Result(rows_in=rows, rows_out=rows, seconds=1, rows_per_second=rows, output_uri=f"s3a://out/{t:%H}/",
                  statistics=stats, incremental=inc if watermark else None)


def go(sched: ScoringSchedule, now: datetime, status: ScoringScheduleStatus | None = None, runs=(),
       created: datetime | None = None) -> Decision:
    last = status.last_schedule_time if status is not None else None
    created = created or (last - timedelta(minutes=1) if last else T0 - 0.5 * H)
    obs = Observed(name="s", generation=1, created=created, spec=sched.spec, runs=list(runs))
    return decide(status or ScoringScheduleStatus(), obs, now,
                  lambda t, w, r: builders.run_manifest(sched, BODY, t, w, r))


def reasons(d: Decision) -> list[str]:
    return [e.reason for e in d.events]


def test_first_run_at_its_time_then_the_next_timer():
    early = go(schedule(), T0 - timedelta(seconds=1))
    assert early.create is None and early.requeue_at == T0 and early.status.next_schedule_time == T0
    d = go(schedule(), T0 + timedelta(milliseconds=300))
    assert d.create == T0 and d.status.last_schedule_time == T0
    assert d.run["metadata"]["name"] == run_name("s", T0) == f"s-{int(T0.timestamp()) // 60}"
    assert d.run["spec"]["input"]["uri"] == "s3a://in/dt=2026-11-24/h=10/"
    assert d.run["metadata"]["ownerReferences"][0]["kind"] == "ScoringSchedule"
    assert d.run["metadata"]["annotations"]["tfscore.io/scheduled-time"] == "2026-11-24T10:00:00Z"
    assert d.start_event.reason == "Started" and "0.3s after" in d.start_event.message
    assert d.requeue_at == T0 + H and d.status.active_count == 1
    assert [r.phase for r in d.status.recent_runs] == ["Pending"]
    again = go(schedule(), T0 + timedelta(seconds=2), d.status, runs=[run(T0, "Pending")])
    assert again.create is None and again.status.active_count == 1, "the time is consumed: decided once"


def test_a_run_made_before_a_crash_is_adopted_not_duplicated():
    d = go(schedule(), T0 + timedelta(seconds=1), runs=[run(T0, "Pending")])
    assert d.create is None and d.status.last_schedule_time == T0 and d.start_event is None


def test_forbid_skips_while_a_run_is_active_and_consumes_the_time():
    sched = schedule(concurrencyPolicy="Forbid")
    st = ScoringScheduleStatus(last_schedule_time=T0 - H)
    active = run(T0 - H)
    d = go(sched, T0 + timedelta(seconds=1), st, runs=[active])
    assert d.create is None and d.status.last_skipped_time == T0 and d.skipped == {"Forbid": 1}
    assert reasons(d) == ["Skipped"] and d.confirm == [active.name] and "Forbid" in d.status.message
    after = go(sched, T0 + timedelta(minutes=10), d.status, runs=[run(T0 - H, "Succeeded", result(T0 - H))])
    assert after.create is None and "Skipped" not in reasons(after), "no late start, no second event"
    assert after.requeue_at == T0 + H


def test_replace_deletes_the_active_run_and_starts_the_new_one():
    sched = schedule(concurrencyPolicy="Replace")
    old = run(T0 - H)
    d = go(sched, T0, ScoringScheduleStatus(last_schedule_time=T0 - H), runs=[old])
    assert d.delete == [old.name] and d.create == T0 and "Replaced" in reasons(d)
    assert [(r.name, r.phase) for r in d.status.recent_runs] == [(run_name("s", T0), "Pending"), (old.name, "Replaced")]
    assert [a.name for a in d.status.active] == [run_name("s", T0)]


def test_allow_overlaps():
    d = go(schedule(), T0, ScoringScheduleStatus(last_schedule_time=T0 - H), runs=[run(T0 - H)])
    assert d.create == T0 and not d.delete and d.status.active_count == 2


def test_missed_times_only_the_most_recent_starts():
    d = go(schedule(), T0 + timedelta(seconds=10), ScoringScheduleStatus(last_schedule_time=T0 - 5 * H))
    assert d.create == T0 and d.skipped == {"Missed": 4}
    missed = next(e for e in d.events if e.reason == "MissedSchedule")
    assert missed.type == "Warning" and "4 start time(s) missed from 2026-11-24T06:00:00Z" in missed.message


def test_starting_deadline_misses_a_late_time_and_reports_it_once():
    sched = schedule(startingDeadlineSeconds=60)
    d = go(sched, T0 + timedelta(minutes=5), ScoringScheduleStatus(last_schedule_time=T0 - 5 * H))
    assert d.create is None and d.skipped == {"Missed": 5} and d.status.last_skipped_time == T0
    assert "to 2026-11-24T10:00:00Z" in next(e.message for e in d.events if e.reason == "MissedSchedule")
    later = go(sched, T0 + timedelta(minutes=6), d.status)
    assert later.create is None and not later.events and not later.skipped
    in_time = go(sched, T0 + timedelta(seconds=59), ScoringScheduleStatus(last_schedule_time=T0 - H))
    assert in_time.create == T0


def test_too_many_missed_times_warns_and_still_starts_the_most_recent():
    d = go(schedule(schedule="* * * * *"), T0 + timedelta(seconds=5), ScoringScheduleStatus(last_schedule_time=T0 - 24 * H))
    assert d.create == T0 and "TooManyMissedTimes" in reasons(d) and d.skipped == {"Missed": 100}
    assert "more than 100 start time(s)" in next(e.message for e in d.events if e.reason == "MissedSchedule")


def test_suspend_starts_nothing_and_resume_follows_the_missed_rules():
    st = ScoringScheduleStatus(last_schedule_time=T0 - 3 * H)
    d = go(schedule(suspend=True), T0 + timedelta(seconds=1), st, runs=[run(T0 - 3 * H)])
    assert d.create is None and d.status.next_schedule_time is None and d.requeue_at is None
    ready = next(c for c in d.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "Suspended") and d.status.active_count == 1
    resumed = go(schedule(), T0 + timedelta(minutes=30), d.status, runs=[run(T0 - 3 * H, "Succeeded", result(T0))])
    assert resumed.create == T0 and resumed.skipped == {"Missed": 2}
    assert next(c for c in resumed.status.conditions if c.type == "Ready").status == "True"
    late = go(schedule(startingDeadlineSeconds=300), T0 + timedelta(minutes=30), d.status)
    assert late.create is None and late.skipped == {"Missed": 3}


def test_history_keeps_the_newest_finished_runs_per_limit():
    sched = schedule(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1)
    ok = [run(T0 - i * H, "Succeeded", result(T0 - i * H)) for i in range(1, 6)]
    bad = [run(T0 - i * H - timedelta(minutes=30), "Failed", reason="DriverFailed") for i in range(1, 4)]
    d = go(sched, T0 - timedelta(minutes=1), ScoringScheduleStatus(last_schedule_time=T0 - H), runs=ok + bad)
    assert sorted(d.delete) == sorted([r.name for r in ok[2:]] + [r.name for r in bad[1:]])
    zero = go(schedule(successfulRunsHistoryLimit=0, failedRunsHistoryLimit=0), T0 - timedelta(minutes=1),
              runs=[*ok[:1], run(T0 - 2 * H, "Running")])
    assert zero.delete == [ok[0].name], "active runs are never pruned"
    assert zero.status.last_successful_run == ok[0].name, "the record outlives the pruned run"


def test_records_are_bounded_and_a_vanished_unfinished_run_is_deleted():
    runs = [run(T0 - i * H, "Succeeded", result(T0 - i * H)) for i in range(1, 15)]
    d = go(schedule(successfulRunsHistoryLimit=20), T0 - timedelta(minutes=1), runs=runs)
    assert len(d.status.recent_runs) == 10 and d.status.recent_runs[0].name == runs[0].name
    assert len(d.finished) == 10, "runs older than every kept record are not news"
    rec = d.status.recent_runs[0]
    assert rec.rows == 10 and rec.statistics["p"].p50 == 0.4 and rec.output_uri == "s3a://out/09/"
    gone = go(schedule(), T0 + timedelta(seconds=1), go(schedule(), T0).status, runs=[])
    assert [(r.name, r.phase) for r in gone.status.recent_runs] == [(run_name("s", T0), "Deleted")]


def test_finished_runs_are_counted_once_with_events():
    st = go(schedule(), T0).status
    d = go(schedule(), T0 + timedelta(minutes=5), st, runs=[run(T0, "Succeeded", result(T0, rows=7))])
    assert [r.name for r in d.finished] == [run_name("s", T0)] and "RunSucceeded" in reasons(d)
    assert d.status.last_result == "Succeeded" and d.status.last_successful_output_uri == "s3a://out/10/"
    assert d.status.last_successful_time == T0 + timedelta(minutes=5) and d.status.active_count == 0
    again = go(schedule(), T0 + timedelta(minutes=6), d.status, runs=[run(T0, "Succeeded", result(T0, rows=7))])
    assert not again.finished and not again.events
    failed = go(schedule(), T0 + timedelta(minutes=5), st, runs=[run(T0, "Failed", reason="OOMKilled")])
    assert failed.status.last_result == "Failed: OOMKilled" and "RunFailed" in reasons(failed)
    assert failed.status.last_successful_run is None


def incremental(**kw) -> ScoringSchedule:
    return schedule(concurrencyPolicy="Forbid", template={"input": {"uri": "s3a://in/", "incremental": {
        "partitionKey": "dt", "after": "2026-11-01", "until": "${scheduledTime-1h:%Y-%m-%d-%H}"}}}, **kw)


def test_watermark_moves_only_with_a_later_succeeded_run():
    sched = incremental()
    first = go(sched, T0)
    assert first.status.incremental.partition_key == "dt" and first.status.incremental.watermark is None
    assert first.run["spec"]["input"]["incremental"] == {"partitionKey": "dt", "after": "2026-11-01",
                                                         "until": "2026-11-24-09"}
    t1 = T0 + H
    failed = go(sched, t1, first.status, runs=[run(T0, "Failed", reason="DriverFailed")])
    assert failed.status.incremental.watermark is None
    assert failed.run["spec"]["input"]["incremental"]["after"] == "2026-11-01", "the next run redoes its partitions"
    ok = go(sched, t1 + H, failed.status, runs=[run(T0, "Failed", reason="DriverFailed"),
                                               run(t1, "Succeeded", result(t1, watermark="2026-11-24-09"))])
    inc = ok.status.incremental
    assert (inc.watermark, inc.run, inc.scheduled_time) == ("2026-11-24-09", run_name("s", t1), t1)
    assert ok.run["spec"]["input"]["incremental"]["after"] == "2026-11-24-09"
    assert ok.status.recent_runs[1].watermark == "2026-11-24-09"
    stale = go(sched, t1 + 2 * H, ok.status.model_copy(update={"recent_runs": []}),
               runs=[run(T0, "Succeeded", result(T0, watermark="2026-11-24-07"))])
    assert stale.status.incremental.watermark == "2026-11-24-09", "an earlier run never moves it back"
    rekeyed = go(schedule(concurrencyPolicy="Forbid", template={"input": {"uri": "s3a://in/", "incremental": {
        "partitionKey": "hour"}}}), t1 + 2 * H, ok.status)
    assert rekeyed.status.incremental.partition_key == "hour" and rekeyed.status.incremental.watermark is None


def test_drift_reference_is_the_previous_successful_output():
    sched = schedule(driftPolicy={"metric": "ks", "threshold": 0.2, "action": "fail"})
    first = go(sched, T0)
    assert "drift" not in first.run["spec"], "nothing to compare the first run with"
    second = go(sched, T0 + H, first.status, runs=[run(T0, "Succeeded", result(T0))])
    assert second.run["spec"]["drift"] == {"referenceUri": "s3a://out/10/", "metric": "ks", "action": "fail",
                                           "threshold": 0.2}


def test_drift_beyond_the_threshold_warns_on_the_schedule():
    over = {"p": Drift(metric="psi", value=0.4, reference="s3a://out/09/", threshold=0.25, exceeded=True)}
    st = go(schedule(), T0).status
    d = go(schedule(), T0 + timedelta(minutes=5), st, runs=[run(T0, "Succeeded", result(T0, drift=over))])
    cond = next(c for c in d.status.conditions if c.type == "DriftExceeded")
    assert cond.status == "True" and "p psi 0.4 > 0.25" in cond.message and "DriftExceeded" in reasons(d)
    assert d.finished[0].drift["p"].value == 0.4
    calm = {"p": Drift(metric="psi", value=0.01, reference="x", threshold=0.25)}
    d2 = go(schedule(), T0 + H, d.status, runs=[run(T0 + H, "Succeeded", result(T0 + H, drift=calm))])
    assert next(c for c in d2.status.conditions if c.type == "DriftExceeded").status == "False"
    failed = go(schedule(), T0 + timedelta(minutes=5), st, runs=[run(T0, "Failed", reason="DriftExceeded")])
    assert failed.status.last_result == "Failed: DriftExceeded"
    assert next(c for c in failed.status.conditions if c.type == "DriftExceeded").status == "True"


def test_a_run_that_cannot_be_rendered_is_skipped_once():
    sched = schedule(template={"output": {"uri": "s3a://out/${scheduledTime-999999w:%Y}/"}})
    d = go(sched, T0)
    assert d.create is None and d.run is None and d.skipped == {"RenderFailed": 1}
    assert d.status.last_skipped_time == T0 and "out of the years" in d.status.message
    assert next(c for c in d.status.conditions if c.type == "Ready").reason == "RenderFailed"
    assert not go(sched, T0 + timedelta(minutes=1), d.status).events


def test_a_refused_create_leaves_the_time_unmet():
    d = go(schedule(), T0, ScoringScheduleStatus(last_schedule_time=T0 - H))
    create_failed(d, "cannot create ScoringJob s-1: quota exceeded", T0)
    assert d.create is None and d.status.last_schedule_time == T0 - H and d.status.active_count == 0
    assert "CreateFailed" in reasons(d) and not d.status.recent_runs
    retry = go(schedule(), T0 + timedelta(seconds=15), d.status)
    assert retry.create == T0


def test_invalid_and_deleting_schedules_start_nothing():
    obs = Observed(name="s", generation=2, created=T0, spec=None, invalid="spec.schedule: bad")
    d = decide(ScoringScheduleStatus(), obs, T0 + H, lambda *a: {})
    assert d.create is None and d.status.message == "spec.schedule: bad" and d.status.observed_generation == 2
    going = Observed(name="s", generation=1, created=T0, spec=schedule().spec, deleting=True)
    assert decide(ScoringScheduleStatus(), going, T0 + H, lambda *a: {}).create is None


@pytest.mark.parametrize("now,fires", [
    (datetime(2026, 1, 15, 8, 0, tzinfo=UTC), True),    # 09:00 CET
    (datetime(2026, 7, 15, 7, 0, tzinfo=UTC), True),    # 09:00 CEST
    (datetime(2026, 7, 15, 8, 0, tzinfo=UTC), False),   # 10:00 CEST
])
def test_the_schedule_is_read_in_its_time_zone(now, fires):
    d = go(schedule(schedule="0 9 * * *", timeZone="Europe/Berlin"), now, created=now - timedelta(minutes=1))
    assert (d.create == now) is fires
