"""ScoringSchedules with the real operator against a real API server, in scaled schedule time (harness/schedules.py:
`* * * * *` fires every TICK real seconds): runs on time, the concurrency policies, history, suspend, drift, and an
operator killed at the due moment (or two operators at once) creating exactly one run per scheduled time."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import timedelta

from harness.common import wait_for
from harness.operator_process import Operator
from harness.schedules import TICK, Schedules, next_minute, parse, poll, real, scoringschedule
from harness.scoringjobs import Cluster

MINUTE = timedelta(minutes=1)


def result(run: dict, drift: dict | None = None) -> str:
    out = {"rowsIn": 5, "rowsOut": 5, "seconds": 1.0, "rowsPerSecond": 5.0, "outputUri": run["spec"]["output"]["uri"]}
    if drift is not None:
        out["statistics"] = {"columns": {"p": {"count": 5, "mean": 0.5, "quantiles": {"p50": 0.5}}}, "drift": drift}
    return json.dumps(out)


def when(run: dict):
    return parse(run["metadata"]["annotations"]["tfscore.io/scheduled-time"])


def finish(k8s: Cluster, run: dict, code: int = 0, message: str | None = None) -> None:
    pod = k8s.wait_pod(run["metadata"]["name"])
    k8s.finish_pod(pod.metadata.name, code, message if message is not None else result(run))


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return -1.0


def test_every_minute_runs_on_time_and_allow_overlaps(schedules: Schedules, k8s: Cluster):
    created_at = time.time()
    sched = schedules.create(scoringschedule("tick"))
    seen: dict[str, float] = {}

    def two_on_time() -> list[dict] | None:
        runs = schedules.runs("tick")
        for r in runs:
            seen.setdefault(r["metadata"]["name"], time.time())
        due = [r for r in runs if real(when(r)) >= created_at]
        return due if len(due) >= 2 else None

    runs = wait_for("two runs due after creation", two_on_time, timeout=4 * TICK, interval=0.02)
    for run in runs:
        name, t = run["metadata"]["name"], when(run)
        lateness = seen[name] - real(t)
        assert 0 <= lateness < 1.5, f"{name}: seen {lateness:.3f}s after its scheduled time"
        born = parse(run["metadata"]["creationTimestamp"]).timestamp()
        assert born >= math.floor(real(t)), f"{name} created before its time by the API server's clock"
        assert name == f"tick-{int(t.timestamp()) // 60}"
        assert run["spec"]["input"]["uri"] == f"s3a://in/t={t:%H%M}/"
        assert run["spec"]["output"]["uri"] == f"s3a://out/tick/{t:%H%M}/"
        assert [(o["kind"], o["uid"], o["controller"]) for o in run["metadata"]["ownerReferences"]] == [
            ("ScoringSchedule", sched["metadata"]["uid"], True)]
    k8s.wait_pod(runs[0]["metadata"]["name"])  # an ordinary ScoringJob: the job controller started its driver
    assert when(runs[1]) - when(runs[0]) == MINUTE
    st = poll("status of both runs", lambda: schedules.status("tick"), lambda s: s.get("activeCount") == 2)
    assert parse(st["lastScheduleTime"]) >= when(runs[1])
    assert parse(st["nextScheduleTime"]) == parse(st["lastScheduleTime"]) + MINUTE
    assert {r["name"] for r in st["recentRuns"]} >= {r["metadata"]["name"] for r in runs}
    assert next(c for c in st["conditions"] if c["type"] == "Ready")["status"] == "True"
    schedules.wait_event("tick", "Started")


def test_forbid_skips_while_a_run_is_active_and_drift_warns(schedules: Schedules, k8s: Cluster, operator: Operator):
    schedules.create(scoringschedule("forbid", concurrencyPolicy="Forbid"))
    first = schedules.wait_runs("forbid", 1)[0]
    skipped = when(first) + MINUTE
    schedules.sleep_until(skipped, extra=1.0)
    assert schedules.run_names("forbid") == [first["metadata"]["name"]]
    assert "still active (concurrencyPolicy Forbid)" in schedules.wait_event("forbid", "Skipped").message
    assert parse(schedules.status("forbid")["lastSkippedTime"]) >= skipped

    drift = {"p": {"metric": "psi", "value": 0.4, "reference": "s3a://out/prev/", "threshold": 0.25,
                   "exceeded": True}}
    finish(k8s, first, message=result(first, drift))
    second = schedules.wait_runs("forbid", 2)[1]
    assert when(second) > skipped, "a skipped time is consumed, not started late"
    st = schedules.status("forbid")
    record = next(r for r in st["recentRuns"] if r["name"] == first["metadata"]["name"])
    assert record["phase"] == "Succeeded" and record["rows"] == 5 and record["drift"]["p"]["exceeded"]
    assert record["statistics"]["p"]["p50"] == 0.5 and st["lastSuccessfulOutputUri"] == first["spec"]["output"]["uri"]
    cond = next(c for c in st["conditions"] if c["type"] == "DriftExceeded")
    assert cond["status"] == "True" and "p psi 0.4 > 0.25" in cond["message"]
    schedules.wait_event("forbid", "DriftExceeded")
    k8s.wait_event(first["metadata"]["name"], "DriftExceeded")  # the run says so too
    text = poll("schedule metrics", operator.metrics, lambda m: sample(
        m, "tfscore_schedule_runs_succeeded_total", namespace=k8s.ns, schedule="forbid") >= 1)
    assert sample(text, "tfscore_schedule_runs_skipped_total", namespace=k8s.ns, schedule="forbid", reason="Forbid") >= 1
    assert sample(text, "tfscore_schedule_runs_started_total", namespace=k8s.ns, schedule="forbid") >= 2
    assert sample(text, "tfscore_schedule_drift", namespace=k8s.ns, schedule="forbid", column="p") == 0.4
    assert re.search(r"^tfscore_schedule_start_lateness_seconds_count [1-9]", text, re.M)


def test_replace_stops_the_active_run(schedules: Schedules, k8s: Cluster):
    schedules.create(scoringschedule("replace", concurrencyPolicy="Replace"))
    first = schedules.wait_runs("replace", 1)[0]["metadata"]["name"]
    k8s.wait_pod(first)
    names = poll("the second run, alone", lambda: schedules.run_names("replace"),
                 lambda n: len(n) == 1 and n[0] != first, timeout=3 * TICK)
    assert "deleted " + first in schedules.wait_event("replace", "Replaced").message
    st = poll("the record", lambda: schedules.status("replace"), lambda s: any(
        r["name"] == first and r["phase"] == "Replaced" for r in s.get("recentRuns", [])))
    assert [a["name"] for a in st["active"]] == names
    wait_for("the replaced run's driver pod garbage-collected", lambda: not k8s.driver_pods(first), timeout=20)


def test_history_is_pruned_and_drift_failures_are_not_retried(schedules: Schedules, k8s: Cluster):
    schedules.create(scoringschedule("hist", successfulRunsHistoryLimit=1, failedRunsHistoryLimit=1,
                                     template={"backoffLimit": 3}))
    drifted = json.dumps({"reason": "DriftExceeded", "message": "p psi 0.4 > 0.25; nothing committed"})
    done: list[str] = []
    for outcome in ("ok", "drift", "ok"):
        run = wait_for("the next run", lambda: next((r for r in schedules.runs("hist")
                                                     if r["metadata"]["name"] not in done), None), timeout=3 * TICK)
        finish(k8s, run, *((1, drifted) if outcome == "drift" else ()))
        done.append(run["metadata"]["name"])
        if outcome == "drift":
            st = k8s.wait_phase(run["metadata"]["name"], "Failed")
            assert st["attempts"] == 1 and "not retried" in st["message"]
    wait_for("the newest success and failure kept", lambda: schedules.run_names("hist") == done[1:], timeout=3 * TICK)
    # The schedule's status follows its runs' phases one reconcile later than the pruning: wait for the last success.
    st = wait_for("the last success in the status",
                  lambda: (s := schedules.status("hist")).get("lastSuccessfulRun") == done[2] and s, timeout=TICK)
    phases = {r["name"]: (r["phase"], r.get("reason")) for r in st["recentRuns"]}
    assert phases[done[0]] == ("Succeeded", None) and phases[done[1]] == ("Failed", "DriftExceeded")
    assert st["lastSuccessfulRun"] == done[2]
    assert len(k8s.driver_pods(done[1])) == 1, "DriftExceeded is permanent: no second attempt"


def test_suspend_then_resume_follows_the_starting_deadline(schedules: Schedules):
    schedules.create(scoringschedule("late-ok", suspend=True))
    schedules.create(scoringschedule("late-no", suspend=True, startingDeadlineSeconds=1))  # 0.1 s in real time
    time.sleep(1.5 * TICK)
    assert not schedules.runs("late-ok") and not schedules.runs("late-no")
    st = schedules.status("late-ok")
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Suspended") and "nextScheduleTime" not in st
    resumed_at = time.time()
    for name in ("late-ok", "late-no"):
        schedules.patch(name, {"suspend": False})
    started = schedules.wait_runs("late-ok", 1, timeout=TICK / 2)[0]
    assert time.time() - resumed_at < TICK / 2 and real(when(started)) < resumed_at, "the missed time starts at once"
    late = schedules.wait_runs("late-no", 1, timeout=2 * TICK)[0]
    assert real(when(late)) > resumed_at, "past its deadline: only the next time starts"
    schedules.wait_event("late-no", "MissedSchedule")


def test_operator_killed_at_the_due_moment_creates_exactly_one_run(schedules: Schedules, operator: Operator):
    # Every 4 minutes (4 TICKs): an operator restart (a few seconds) ends before the next time is due, so the time it
    # was killed at is the most recent unmet one when it is back, and must start then: once.
    schedules.create(scoringschedule("crash", schedule="*/4 * * * *"))
    first = next_minute(time.time() + 0.5, every=4)
    for offset in (-0.02, 0.01):  # just before the due moment, and while its reconcile is likely in flight
        due = next_minute(time.time() + 0.5, every=4)
        schedules.sleep_until(due, extra=offset)
        operator.kill()
        operator.start()
        wait_for(f"the run for {due:%H:%M}", lambda d=due: any(when(r) == d for r in schedules.runs("crash")),
                 timeout=4 * TICK)
    times = [when(r) for r in schedules.runs("crash")]
    expected = [first + 4 * i * MINUTE for i in range(len(times))]
    assert times == expected, f"one run per scheduled time, none missing: {times}"
    assert not schedules.events("crash", "MissedSchedule")


def test_two_operators_at_once_create_one_run_per_time(schedules: Schedules, kubeconfig: str, operator: Operator,
                                                       tmp_path):
    from harness.schedules import OPERATOR_ENV

    second = Operator(kubeconfig, tmp_path, env=OPERATOR_ENV)
    second.name = "operator-b"
    schedules.create(scoringschedule("pair"))
    second.start()
    try:
        start = time.time()
        runs = poll("three runs", lambda: schedules.runs("pair"), lambda r: len(r) >= 3, timeout=5 * TICK)
    finally:
        second.stop()
    times = [when(r) for r in runs]
    assert times == [times[0] + i * MINUTE for i in range(len(times))]
    assert time.time() - start < 5 * TICK
    st = poll("status", lambda: schedules.status("pair"), lambda s: s.get("activeCount", 0) >= 3)
    assert len({r["name"] for r in st["recentRuns"]}) == len(st["recentRuns"])
