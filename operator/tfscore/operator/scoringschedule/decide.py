"""A ScoringSchedule's whole decision as one pure function: (status, observations, now) → Decision.

`decide` never talks to the API server and never reads a clock: the reconcile feeds it the schedule (validated), its runs
(ScoringJobs it owns, as RunViews) and `now` (the API server's time, see clock.py), then applies the Decision: delete
runs, create the run for `create`, patch the status, post the events, wake up at `requeue_at`. Re-running it on the
same inputs gives the same Decision; run names are derived from the scheduled time, so a crash between creating a run
and recording it (or two operators) creates exactly one run: the next decision finds it and adopts it.

Rules (Kubernetes CronJob v1.33, syncCronJob, where it has a word for it):
- Unmet times are the fire times after max(lastScheduleTime, lastSkippedTime, creationTimestamp) up to now; only the
  most recent can start (schedule_time.missed_runs, with CronJob's cap of 100: TooManyMissedTimes). It starts unless it
  is more than startingDeadlineSeconds late; every other unmet time is missed (a Warning event, counted).
- Forbid: a run due while another is active is skipped (event, counted) and that time is consumed; the CronJob
  controller instead starts it late once the active run finishes (within startingDeadlineSeconds). Skipping is what the
  CronJob documentation promises, and an incremental schedule loses nothing: the next run starts from the watermark.
- Replace: the active runs are deleted, then the new one is created. Allow: runs overlap.
- suspend: nothing starts; on resume the unmet times follow the rules above (the most recent starts if within the
  deadline). Active runs carry on.
- History: finished runs beyond successfulRunsHistoryLimit / failedRunsHistoryLimit are deleted, oldest first.
- Incremental: each run's `after` is status.incremental.watermark; only a succeeded run's result.incremental moves it,
  and only a run scheduled later than the one that last moved it (a failed or replaced run leaves it: the next run
  scores its partitions). The drift reference is the latest succeeded run's output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from tfscore.api.schedule_run import format_time, run_name
from tfscore.api.schedule_time import missed_runs, next_after, parse_schedule
from tfscore.api.scoringschedule import (
    MAX_RECENT_RUNS,
    ActiveRun,
    ConcurrencyPolicy,
    IncrementalStatus,
    RunRecord,
    ScoringScheduleSpec,
    ScoringScheduleStatus,
)
from tfscore.operator.objects import set_condition
from tfscore.operator.scoringjob.lifecycle import Event
from tfscore.operator.scoringschedule.runs import FINISHED, GONE, RunView, describe_drift, drift_exceeded, record

READY, DRIFT = "Ready", "DriftExceeded"
# The run's manifest for (scheduled time, watermark, drift reference); raises ValueError when it cannot be rendered.
Render = Callable[[datetime, "str | None", "str | None"], Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Observed:
    name: str
    generation: int
    created: datetime                    # the schedule's creationTimestamp (API server time)
    spec: ScoringScheduleSpec | None     # None when invalid
    invalid: str | None = None
    runs: Sequence[RunView] = ()         # its runs present in the cluster
    deleting: bool = False


@dataclasses.dataclass
class Decision:
    status: ScoringScheduleStatus
    create: datetime | None = None                    # the scheduled time of the run to create
    run: Mapping[str, Any] | None = None              # its rendered manifest
    previous: datetime | None = None                  # lastScheduleTime before this decision
    delete: list[str] = dataclasses.field(default_factory=list)
    confirm: list[str] = dataclasses.field(default_factory=list)   # runs the decision relies on being active
    events: list[Event] = dataclasses.field(default_factory=list)
    start_event: Event | None = None                  # posted only when the run is created (not when adopted)
    requeue_at: datetime | None = None
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)    # reason → count (metrics)
    finished: list[RunRecord] = dataclasses.field(default_factory=list)  # runs that finished since the last decision


def decide(status: ScoringScheduleStatus, obs: Observed, now: datetime, render: Render) -> Decision:
    st = status.model_copy(deep=True)
    d = Decision(status=st, previous=status.last_schedule_time)
    st.observed_generation = obs.generation
    _fold(d, obs, now)
    if obs.deleting:
        return d
    if obs.spec is None:
        _not_ready(d, "Invalid", obs.invalid or "invalid spec", now)
        return d
    spec = obs.spec
    _incremental_key(st, spec)
    if spec.suspend:
        _not_ready(d, "Suspended", "suspended (spec.suspend is true): no run starts", now)
        _prune(d, obs, spec)
        return d
    _schedule(d, obs, spec, now, render)
    _prune(d, obs, spec)
    return d


def _not_ready(d: Decision, reason: str, message: str, now: datetime) -> None:
    st = d.status
    st.next_schedule_time, st.message = None, message
    st.conditions = set_condition(st.conditions, READY, False, reason, message, now)


# ---------------------------------------------------------------- what the runs did


def _fold(d: Decision, obs: Observed, now: datetime) -> None:
    """Records from the runs present (newest MAX_RECENT_RUNS kept), active runs, the last result, the last success,
    the watermark and drift, and the events of runs that finished since the last decision."""
    st = d.status
    old = {r.name: r for r in st.recent_runs}
    present = {r.name: r for r in obs.runs}
    merged = dict(old)
    for run in obs.runs:
        merged[run.name] = record(run)
    for name, rec in merged.items():
        if name not in present and rec.phase not in (*FINISHED, *GONE):
            merged[name] = rec.model_copy(update={"phase": "Deleted"})  # went away unfinished (by hand, or its TTL)
    kept = sorted(merged.values(), key=lambda r: r.scheduled_time, reverse=True)[:MAX_RECENT_RUNS]
    st.recent_runs = kept
    active = sorted((r for r in obs.runs if r.active), key=lambda r: r.scheduled_time)
    st.active = [ActiveRun(name=r.name, scheduled_time=r.scheduled_time) for r in active]
    st.active_count = len(st.active)
    newly = [r for r in reversed(kept) if r.phase in FINISHED and (r.name not in old or old[r.name].phase not in
                                                                     FINISHED)]
    for rec in newly:  # oldest first: a later success wins
        d.finished.append(rec)
        _finished(d, rec)
    latest = next((r for r in kept if r.phase in FINISHED), None)
    if latest is not None:
        st.last_result = latest.phase + (f": {latest.reason}" if latest.reason else "")
        if latest.drift or latest.reason == "DriftExceeded" or DRIFT in (c.type for c in st.conditions):
            over = drift_exceeded(latest)
            st.conditions = set_condition(st.conditions, DRIFT, over, "DriftExceeded" if over else "WithinThreshold",
                                          describe_drift(latest) if over else f"run {latest.name}: drift within the "
                                          "threshold", now)


def _finished(d: Decision, rec: RunRecord) -> None:
    st = d.status
    last_ok = next((r for r in st.recent_runs if r.name == st.last_successful_run), None)
    if rec.phase == "Succeeded":
        if st.last_successful_run is None or last_ok is None or rec.scheduled_time > last_ok.scheduled_time:
            st.last_successful_run, st.last_successful_time = rec.name, rec.completion_time
            st.last_successful_output_uri = rec.output_uri or st.last_successful_output_uri
        inc = st.incremental
        if inc is not None and rec.watermark is not None and (inc.scheduled_time is None
                                                              or rec.scheduled_time > inc.scheduled_time):
            inc.watermark, inc.run, inc.scheduled_time = rec.watermark, rec.name, rec.scheduled_time
        d.events.append(Event("Normal", "RunSucceeded", f"run {rec.name} ({format_time(rec.scheduled_time)}) "
                                                        f"succeeded: {rec.rows if rec.rows is not None else '?'} rows"))
    else:
        d.events.append(Event("Warning", "RunFailed", f"run {rec.name} ({format_time(rec.scheduled_time)}) failed: "
                                                      f"{rec.reason}"))
    if drift_exceeded(rec):
        d.events.append(Event("Warning", "DriftExceeded", describe_drift(rec)))


def _incremental_key(st: ScoringScheduleStatus, spec: ScoringScheduleSpec) -> None:
    key = spec.incremental_key
    if key is None:
        st.incremental = None
    elif st.incremental is None or st.incremental.partition_key != key:
        st.incremental = IncrementalStatus(partition_key=key)  # a new key starts from jobTemplate's `after`


# ---------------------------------------------------------------- the next run


def _schedule(d: Decision, obs: Observed, spec: ScoringScheduleSpec, now: datetime, render: Render) -> None:
    st = d.status
    cron, zone = parse_schedule(spec.schedule), spec.time_zone
    since = max(t for t in (st.last_schedule_time, st.last_skipped_time, obs.created) if t is not None)
    unmet = missed_runs(cron, zone, since, now)
    t = unmet.most_recent
    if t is not None:
        deadline = spec.starting_deadline_seconds
        in_time = deadline is None or t + timedelta(seconds=deadline) >= now
        missed = unmet.count - (1 if in_time else 0)
        if unmet.too_many:
            d.events.append(Event("Warning", "TooManyMissedTimes", "too many missed start times (> 100): set or "
                                  "decrease startingDeadlineSeconds, or check for clock skew"))
        if missed > 0:
            first = next_after(cron, since, zone)
            more = "more than " if unmet.too_many else ""
            last = t if not in_time else None
            d.events.append(Event("Warning", "MissedSchedule", f"{more}{missed} start time(s) missed from "
                                  f"{format_time(first)}{f' to {format_time(last)}' if last else ''} (operator down, "
                                  f"suspended, or later than startingDeadlineSeconds={deadline}); only the most "
                                  "recent time in the deadline starts"))
            d.skipped["Missed"] = d.skipped.get("Missed", 0) + missed
        if not in_time:
            st.last_skipped_time = t
        else:
            _start(d, obs, spec, t, now, render)
    nxt = next_after(cron, now, zone)
    st.next_schedule_time, d.requeue_at = nxt, nxt
    message = f"next run at {format_time(nxt)}" if nxt else "the schedule never fires again"
    if not d.skipped.get("Forbid") and not d.skipped.get("RenderFailed"):
        st.message = message
    if not d.skipped.get("RenderFailed"):
        st.conditions = set_condition(st.conditions, READY, True, "Scheduled", message, now)


def _start(d: Decision, obs: Observed, spec: ScoringScheduleSpec, t: datetime, now: datetime,
           render: Render) -> None:
    st = d.status
    name = run_name(obs.name, t)
    if any(r.name == name for r in obs.runs):  # created before a crash (or by another replica): adopt it
        st.last_schedule_time = t
        return
    watermark = st.incremental.watermark if st.incremental is not None else None
    try:
        d.run = render(t, watermark, st.last_successful_output_uri)
    except ValueError as exc:  # e.g. a shift out of range: this time cannot run, say so once and go on
        st.last_skipped_time, st.message = t, f"the run for {format_time(t)} was not started: {exc}"
        st.conditions = set_condition(st.conditions, READY, False, "RenderFailed", st.message, now)
        d.events.append(Event("Warning", "RenderFailed", st.message))
        d.skipped["RenderFailed"] = 1
        return
    active = [r for r in obs.runs if r.active]
    policy = spec.concurrency_policy
    if active and policy == ConcurrencyPolicy.forbid:
        names = ", ".join(r.name for r in active)
        st.last_skipped_time = t
        st.message = f"skipped the run for {format_time(t)}: {names} still active (concurrencyPolicy Forbid)"
        d.events.append(Event("Normal", "Skipped", st.message))
        d.skipped["Forbid"] = 1
        d.confirm = [r.name for r in active]
        d.run = None
        return
    if active and policy == ConcurrencyPolicy.replace:
        d.delete.extend(r.name for r in active)
        d.confirm = [r.name for r in active]
        replaced = {r.name for r in active}
        st.recent_runs = [r.model_copy(update={"phase": "Replaced"}) if r.name in replaced else r
                          for r in st.recent_runs]
        st.active = [a for a in st.active if a.name not in replaced]
        d.events.append(Event("Normal", "Replaced", f"deleted {', '.join(sorted(replaced))} (still active at "
                              f"{format_time(t)}, concurrencyPolicy Replace)"))
    d.create = st.last_schedule_time = t
    st.recent_runs = sorted([RunRecord(name=name, scheduled_time=t, phase="Pending"), *st.recent_runs],
                            key=lambda r: r.scheduled_time, reverse=True)[:MAX_RECENT_RUNS]
    st.active = sorted([*st.active, ActiveRun(name=name, scheduled_time=t)], key=lambda a: a.scheduled_time)
    st.active_count = len(st.active)
    late = (now - t).total_seconds()
    d.start_event = Event("Normal", "Started", f"created run {name} for {format_time(t)} ({late:.1f}s after its "
                                               "scheduled time)")


def create_failed(d: Decision, message: str, now: datetime) -> None:
    """The API server refused the run `d.create`: nothing started, the time stays unmet (the next decision retries it
    while it is within startingDeadlineSeconds)."""
    st, t = d.status, d.create
    assert t is not None and d.run is not None
    name = d.run["metadata"]["name"]
    st.recent_runs = [r for r in st.recent_runs if r.name != name]
    st.active = [a for a in st.active if a.name != name]
    st.active_count = len(st.active)
    st.last_schedule_time, st.message = d.previous, message
    st.conditions = set_condition(st.conditions, READY, False, "CreateFailed", message, now)
    d.create = d.run = d.start_event = None
    d.events.append(Event("Warning", "CreateFailed", message))


# ---------------------------------------------------------------- history


def _prune(d: Decision, obs: Observed, spec: ScoringScheduleSpec) -> None:
    done = sorted((r for r in obs.runs if r.finished and not r.deleting and r.name not in d.delete),
                  key=lambda r: r.scheduled_time, reverse=True)
    for phase, limit in (("Succeeded", spec.successful_runs_history_limit),
                         ("Failed", spec.failed_runs_history_limit)):
        d.delete.extend(r.name for r in [r for r in done if r.phase == phase][limit:])
