"""The Job-like lifecycle of a ScoringJob as one pure function: (status, observations, now) → Decision.

`decide` never talks to the API server and never reads the clock; the handler feeds it what it observed (the spec the run
is bound to, the driver pods by attempt, `suspend`, the generation) and applies the Decision: create the next attempt's
pod, delete pods, delete the job (TTL), patch the status, post the events, requeue after `requeue_after` seconds.
Re-running it on the same inputs gives the same Decision, so a crash anywhere (or a stale cache) is harmless:
deterministic child names make creation idempotent and a newer attempt's pod found in the cluster is adopted.

Rules (Kubernetes Job semantics where Job has a word for it):
- invalid spec (before the first start; the ScoringPolicy included): Failed, reason Invalid, nothing created; a later
  edit is validated afresh. A bound spec that changed under a started run (job.json not matching status.specHash):
  Failed, reason SpecTampered, its pods deleted.
- an object the API server refuses to create (Pod Security, a missing ServiceAccount, a 422): retried, and Failed,
  reason CreateRejected, with the API server's message once startupTimeoutSeconds have passed (`create_rejected`).
- a driver pod that succeeds wins over everything else (deadline, suspend); its termination message is the Result
  (drift beyond the threshold in it: condition DriftExceeded and a Warning event, the job still Succeeded).
- activeDeadlineSeconds counts from status.startTime (reset on resume, as for Jobs): Failed, DeadlineExceeded,
  driver pods deleted.
- suspend: delete the running attempt's pod (not counted as a failure), phase Suspended; resume starts a new attempt.
- a failed attempt (non-zero exit, pod deleted, startup timeout, image that can never be pulled) counts against
  backoffLimit; the next attempt starts after base·2^(failures-1) seconds (capped); past the limit: Failed with the
  attempt's reason. A permanent failure (driver_pod.PERMANENT_REASONS: DriftExceeded) fails the job at once.
- ttlSecondsAfterFinished: the finished ScoringJob is deleted (and with it, by ownership, everything it made).
- spec edits after the first start are ignored with one Warning event per generation (the run keeps the spec it
  started with; `suspend` is the only live field).
- output in use (obs.output_holder, before the first start): phase Pending, condition OutputInUse naming the holder;
  the job starts once no active job ahead of it writes an overlapping output (outputs.py).
- queued (a Kueue Workload, obs.queue): nothing starts until Kueue admits it; phase Queued with Kueue's reason. An
  eviction stops the running attempt like suspend does (not a failure, activeDeadlineSeconds paused); readmission
  starts a new attempt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from tfscore.api.contract import Progress
from tfscore.api.scoringjob import Phase, ScoringJobSpec, ScoringJobStatus, model_entries
from tfscore.operator.objects import condition, set_condition
from tfscore.operator.scoringjob import drift, names, outputs, queueing
from tfscore.operator.scoringjob.driver_pod import PodView, observe_pod
from tfscore.operator.scoringjob.queueing import QueueView

FINISHED = (Phase.succeeded, Phase.failed)
OUTPUT_RECHECK_SECONDS = 5.0  # while waiting for another job's output
QUIET_PENDING = ("PodPending", "ContainerCreating")  # the normal first seconds of a pod: nothing worth a status write


@dataclasses.dataclass(frozen=True)
class Observed:
    name: str
    generation: int
    spec: ScoringJobSpec | None           # the spec the run is bound to (None when invalid)
    invalid: str | None = None            # validation message (before the first start)
    invalid_reason: str = "Invalid"       # or SpecTampered (the bound spec changed under a started run)
    suspend: bool = False                 # the live spec.suspend
    spec_changed: bool = False            # the live spec differs from the bound one (beyond suspend)
    pods: Mapping[int, Mapping[str, Any] | None] = dataclasses.field(default_factory=dict)  # attempt → pod
    queue: QueueView | None = None        # Kueue's word on the job's Workload (None: the job is not queued)
    output_holder: str | None = None      # ns/name of an active job ahead of this one writing its output (outputs.py)


@dataclasses.dataclass(frozen=True)
class Event:
    type: str      # Normal | Warning
    reason: str
    message: str


@dataclasses.dataclass
class Decision:
    status: ScoringJobStatus
    create_attempt: int | None = None
    delete_pods: list[int] = dataclasses.field(default_factory=list)
    delete_job: bool = False
    events: list[Event] = dataclasses.field(default_factory=list)
    requeue_after: float | None = None
    transitions: list[str] = dataclasses.field(default_factory=list)  # started | succeeded | failed | admitted |
    #                                                                   evicted (metrics)

    def wake_at(self, when: datetime | None, now: datetime) -> None:
        if when is None:
            return
        delay = max(0.0, (when - now).total_seconds())
        self.requeue_after = delay if self.requeue_after is None else min(self.requeue_after, delay)


def decide(status: ScoringJobStatus, obs: Observed, now: datetime,
           backoff: Callable[[int], float]) -> Decision:
    st = status.model_copy(deep=True)
    d = Decision(status=st)

    def event(type_: str, reason: str, message: str) -> None:
        d.events.append(Event(type_, reason, message))

    def finish(phase: Phase, reason: str, message: str) -> None:
        st.phase, st.message, st.completion_time, st.next_attempt_time = phase, message, now, None
        st.conditions = set_condition(st.conditions, Phase.running, False, reason, message, now)
        st.conditions = set_condition(st.conditions, phase, True, reason, message, now)
        event("Normal" if phase == Phase.succeeded else "Warning", reason, message)
        d.transitions.append(phase.lower())

    failed_cond = condition(st.conditions, Phase.failed)
    if (st.phase == Phase.failed and failed_cond and failed_cond.reason == "Invalid"
            and obs.generation != st.observed_generation and st.attempts == 0):
        st = d.status = ScoringJobStatus()  # an invalid job was edited: judge the new spec afresh
    if obs.spec_changed and obs.generation != st.observed_generation and st.phase not in FINISHED:
        event("Warning", "SpecChangeIgnored", f"spec changed (generation {obs.generation}) after the run started; "
              "the run keeps the spec it started with (only `suspend` applies). Delete and re-create the "
              "ScoringJob to run a different spec.")
    st.observed_generation = obs.generation
    if obs.spec is not None:
        st.model_summary = model_summary(obs.spec)

    if st.phase in FINISHED:
        _ttl(d, obs, now)
        return d
    if obs.invalid is not None or obs.spec is None:
        if st.attempts:  # a started run whose bound spec cannot be trusted: stop it
            d.delete_pods = sorted(a for a, p in obs.pods.items() if p is not None)
        finish(Phase.failed, obs.invalid_reason, obs.invalid or "invalid spec")
        _ttl(d, obs, now)
        return d
    spec = obs.spec

    latest = max((a for a, p in obs.pods.items() if p is not None), default=0)
    if latest > st.attempts:  # a pod created just before a crash, or by a status write that was lost: adopt it
        st.attempts, st.driver_pod, st.next_attempt_time = latest, names.driver_pod_name(obs.name, latest), None
        st.start_time = st.start_time or now
    attempt = st.attempts
    view = observe_pod(obs.pods.get(attempt)) if attempt else None
    for old, pod in obs.pods.items():  # an older attempt still alive (after an operator crash): stop it
        if (old != attempt and pod is not None and not (pod.get("metadata") or {}).get("deletionTimestamp")
                and observe_pod(pod).state in ("pending", "running")):
            d.delete_pods.append(old)

    if view is not None and view.state == "succeeded":
        _succeed(st, view, finish)
        if st.phase == Phase.succeeded and (warning := drift.mark(st, now)):
            event("Warning", drift.CONDITION, warning)
        _ttl(d, obs, now)
        return d

    deadline = (st.start_time + timedelta(seconds=spec.active_deadline_seconds)
                if spec.active_deadline_seconds and st.start_time else None)
    if deadline is not None and now >= deadline and st.phase not in (Phase.suspended, Phase.queued):
        d.delete_pods = sorted({*d.delete_pods, *(a for a, p in obs.pods.items() if p is not None)})
        finish(Phase.failed, "DeadlineExceeded", f"the job ran longer than activeDeadlineSeconds "
                                           f"({spec.active_deadline_seconds}s); its pods were deleted")
        _ttl(d, obs, now)
        return d

    if obs.suspend:
        if st.phase != Phase.suspended:
            if view is not None and view.state in ("pending", "running"):
                d.delete_pods.append(attempt)
            st.phase, st.next_attempt_time, st.message = Phase.suspended, None, "suspended (spec.suspend is true)"
            st.conditions = set_condition(st.conditions, Phase.running, False, "Suspended", st.message, now)
            st.conditions = set_condition(st.conditions, Phase.suspended, True, "Suspended", st.message, now)
            event("Normal", "Suspended", f"suspended; driver pod {st.driver_pod or '-'} stopped"
                  if attempt else "created suspended; nothing started")
        return d

    if obs.queue is not None and not obs.queue.admitted:
        deleting = bool(((obs.pods.get(attempt) or {}).get("metadata") or {}).get("deletionTimestamp"))
        _hold(d, obs.queue, None if deleting else view, attempt, now, event)
        return d
    if st.phase == Phase.queued:  # admitted (attempt 0: the first start), or no longer queued at all
        why = obs.queue.message if obs.queue else f"no longer queued (no {queueing.QUEUE_LABEL} label)"
        st.conditions = set_condition(st.conditions, Phase.queued, False, "Admitted", why, now)
        st.start_time = None  # activeDeadlineSeconds counts from the admitted start (as after a resume)
        event("Normal", "Admitted", f"{why}; starting attempt {attempt + 1}")
        d.transitions.append("admitted")
        if attempt == 0 and _output_in_use(d, obs, now, event):
            return d
        _start(d, obs, now, attempt + 1, spec, event)
        return d

    if st.phase == Phase.suspended:
        st.conditions = set_condition(st.conditions, Phase.suspended, False, "Resumed", "spec.suspend is false", now)
        st.start_time = None  # activeDeadlineSeconds restarts on resume (as for Jobs)
        event("Normal", "Resumed", "resumed; starting a new attempt")
        _start(d, obs, now, attempt + 1, spec, event)
        return d

    if attempt == 0:
        if not _output_in_use(d, obs, now, event):
            _start(d, obs, now, 1, spec, event)
        return d

    assert view is not None
    startup_deadline = (view.created or now) + timedelta(seconds=spec.startup_timeout_seconds)
    timed_out = view.state == "pending" and (view.fatal or now >= startup_deadline)
    if view.state in ("failed", "missing") or timed_out or st.next_attempt_time is not None:
        if st.next_attempt_time is None:  # first sight of this failure
            reason, message = _failure(view, timed_out, spec)
            st.failed += 1
            if view.state == "pending":
                d.delete_pods.append(attempt)
            if view.permanent:  # retrying cannot help (e.g. DriftExceeded: the same data drifts the same way)
                finish(Phase.failed, reason, f"attempt {attempt} failed: {message} (not retried: {reason})")
                _ttl(d, obs, now)
                return d
            if st.failed > spec.backoff_limit:
                finish(Phase.failed, reason, f"attempt {attempt} failed: {message} (backoffLimit {spec.backoff_limit} "
                                       f"reached after {st.failed} failed attempt(s))")
                _ttl(d, obs, now)
                return d
            delay = backoff(st.failed)
            st.next_attempt_time = now + timedelta(seconds=delay)
            st.phase = Phase.pending
            st.message = f"attempt {attempt} failed: {reason}: {message}; retrying in {delay:g}s"
            st.conditions = set_condition(st.conditions, Phase.running, False, reason, message, now)
            event("Warning", "AttemptFailed", f"{st.message} ({st.failed}/{spec.backoff_limit} retries used)")
        if now >= st.next_attempt_time:
            _start(d, obs, now, attempt + 1, spec, event)
        else:
            d.wake_at(st.next_attempt_time, now)
        d.wake_at(deadline, now)
        return d

    if view.state == "pending":
        st.phase = Phase.pending
        if view.reason not in QUIET_PENDING:  # say why it waits (not a status write per pod event while it is born)
            st.message = f"driver pod {st.driver_pod}: {view.reason}" + (f": {view.message}" if view.message else "")
        d.wake_at(startup_deadline, now)
    elif view.state == "running":
        if st.phase != Phase.running:
            st.phase, st.message = Phase.running, f"driver pod {st.driver_pod} is running (attempt {attempt})"
            st.conditions = set_condition(st.conditions, Phase.running, True, "DriverRunning", st.message, now)
            event("Normal", "Running", st.message)
        if view.progress is not None:
            st.progress = view.progress
    d.wake_at(deadline, now)
    return d


def model_summary(spec: ScoringJobSpec) -> str:
    """The MODEL printer column: the (first) model's uri, and how many more a multi-model job scores."""
    entries = model_entries(spec)
    more = f" (+{len(entries) - 1})" if len(entries) > 1 else ""
    return f"{entries[0].spec.uri}{more}"


def _start(d: Decision, obs: Observed, now: datetime, attempt: int, spec: ScoringJobSpec,
           event: Callable[[str, str, str], None]) -> None:
    st = d.status
    st.attempts, st.next_attempt_time = attempt, None
    st.driver_pod = names.driver_pod_name(obs.name, attempt)
    st.start_time = st.start_time or now
    st.completion_time = None
    st.phase = Phase.pending
    st.message = f"starting attempt {attempt}: driver pod {st.driver_pod}"
    d.create_attempt = attempt
    if attempt == 1:
        d.transitions.append("started")
    event("Normal", "Started", f"created driver pod {st.driver_pod} (attempt {attempt})")
    d.wake_at(now + timedelta(seconds=spec.startup_timeout_seconds), now)
    if spec.active_deadline_seconds:
        d.wake_at(st.start_time + timedelta(seconds=spec.active_deadline_seconds), now)


def _output_in_use(d: Decision, obs: Observed, now: datetime, event: Callable[[str, str, str], None]) -> bool:
    """Before the first start: wait (Pending, condition OutputInUse) while another active job holds the output."""
    st = d.status
    held = condition(st.conditions, outputs.CONDITION)
    if obs.output_holder is None:
        if held is not None and held.status == "True":
            st.conditions = set_condition(st.conditions, outputs.CONDITION, False, "Released",
                                          "no other active ScoringJob writes this output", now)
        return False
    message = (f"waiting: active ScoringJob {obs.output_holder} writes an output that overlaps this job's output.uri "
               "or quarantineUri; this job starts when it finishes")
    if held is None or held.status != "True" or held.message != message:
        event("Normal", outputs.CONDITION, message)
    st.phase, st.message = Phase.pending, message
    st.conditions = set_condition(st.conditions, outputs.CONDITION, True, outputs.CONDITION, message, now)
    d.wake_at(now + timedelta(seconds=OUTPUT_RECHECK_SECONDS), now)  # the holder finishing is not our event
    return True


def _hold(d: Decision, queue: QueueView, view: PodView | None, attempt: int, now: datetime,
          event: Callable[[str, str, str], None]) -> None:
    """Not admitted: phase Queued with Kueue's reason; a running attempt was evicted: stop it (not a failure)."""
    st = d.status
    message = queue.describe()
    queued = condition(st.conditions, Phase.queued)
    if view is not None and view.state in ("pending", "running"):
        d.delete_pods.append(attempt)
        d.transitions.append("evicted")
        message = f"attempt {attempt} stopped: its Workload is no longer admitted ({queue.reason}: {queue.message}); " \
                  f"back in LocalQueue {queue.queue}"
        event("Normal", "Evicted", f"{message} (not counted against backoffLimit)")
        st.conditions = set_condition(st.conditions, Phase.running, False, "Evicted", message, now)
    elif st.phase != Phase.queued or queued is None or queued.reason != queue.reason:
        event("Normal", "Queued", message)
    if st.phase == Phase.suspended:
        st.conditions = set_condition(st.conditions, Phase.suspended, False, "Resumed", "spec.suspend is false", now)
    st.phase, st.message, st.next_attempt_time = Phase.queued, message, None
    st.conditions = set_condition(st.conditions, Phase.queued, True, queue.reason, message, now)


def _failure(view: PodView, timed_out: bool, spec: ScoringJobSpec) -> tuple[str, str]:
    if timed_out and not view.fatal:
        detail = f"{view.reason}: {view.message}" if view.message else view.reason
        return view.reason or "StartupTimeout", (f"driver pod not running after startupTimeoutSeconds "
                                                 f"({spec.startup_timeout_seconds}s): {detail}")
    return view.reason, view.message or view.reason


def _succeed(st: ScoringJobStatus, view: PodView, finish: Callable[[str, str, str], None]) -> None:
    result = view.result
    st.result = result
    if result is None:
        finish(Phase.succeeded, "Completed", "the driver exited 0 but reported no result")
        return
    if result.rows_in != result.rows_out + result.rows_quarantined:
        finish(Phase.failed, "RowCountMismatch", f"rows in ({result.rows_in}) != rows out ({result.rows_out}) + "
                                           f"rows quarantined ({result.rows_quarantined})")
        return
    st.model = result.model or st.model
    done = view.progress.tasks_total if view.progress else 0
    st.progress = Progress(rows_scored=result.rows_out, tasks_done=done, tasks_total=done, percent=100)
    finish(Phase.succeeded, "Completed", f"scored {result.rows_out} rows in {result.seconds:.1f}s "
                                   f"({result.rows_per_second:.0f} rows/s) into {result.output_uri}")


def _ttl(d: Decision, obs: Observed, now: datetime) -> None:
    st, spec = d.status, obs.spec
    ttl = spec.ttl_seconds_after_finished if spec is not None else None
    if ttl is None or st.completion_time is None:
        return
    expiry = st.completion_time + timedelta(seconds=ttl)
    if now >= expiry:
        d.delete_job = True
        d.events.append(Event("Normal", "TTLExpired", f"deleting: finished {ttl}s ago (ttlSecondsAfterFinished)"))
    else:
        d.wake_at(expiry, now)


CREATE_RETRY_SECONDS = 15.0


def create_rejected(status: ScoringJobStatus, spec: ScoringJobSpec, message: str, now: datetime) -> Decision:
    """The API server refused to create this attempt's objects (the cause rarely goes away by itself): keep retrying
    until startupTimeoutSeconds after the attempt was due (the first start, or its back-off time), then Failed with the
    API server's message. The start time is persisted, so an operator restart does not reset the clock."""
    st = status.model_copy(deep=True)
    d = Decision(status=st)
    st.start_time = st.start_time or now
    since = st.next_attempt_time or st.start_time
    deadline = since + timedelta(seconds=spec.startup_timeout_seconds)
    if now >= deadline:
        text = (f"the API server refused the job's objects for startupTimeoutSeconds ({spec.startup_timeout_seconds}s): "
                f"{message}")
        st.phase, st.message, st.completion_time, st.next_attempt_time = Phase.failed, text, now, None
        st.conditions = set_condition(st.conditions, Phase.running, False, "CreateRejected", text, now)
        st.conditions = set_condition(st.conditions, Phase.failed, True, "CreateRejected", text, now)
        d.events.append(Event("Warning", "CreateRejected", text))
        d.transitions.append("failed")
        return d
    if st.message != message:
        d.events.append(Event("Warning", "CreateFailed", message))
    st.phase, st.message = st.phase or Phase.pending, message
    d.wake_at(min(deadline, now + timedelta(seconds=CREATE_RETRY_SECONDS)), now)
    return d
