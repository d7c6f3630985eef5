"""Reconcile one ScoringSchedule: read what is there, let `decide` choose, apply its Decision.

Thin by design: validation is the pydantic model, the run's manifest comes from `builders`, meaning from `decide`. What
lives here is the order of API calls and their idempotency: runs a decision relies on being active (Forbid skips,
Replace deletes) are re-read first; then deletions; then the run is created (create-if-absent: its name is derived from
the scheduled time, so 409 is a run an earlier attempt or another replica made, adopted when it is ours); the status
last, guarded by resourceVersion (a conflict re-reads and decides again).

A run just created is recorded by a second pass, not this one: the schedule goes to the back of the work queue, so when
many schedules share a fire time every run is created before any status is written (the API server's time goes to
the runs first). Nothing is lost if the operator stops in between: the second pass, or the next operator, finds the
run by its name and adopts it (the decision's events and counts are made by that pass).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tfscore.api.common import format_validation_error
from tfscore.api.scoringschedule import ScoringSchedule, ScoringScheduleStatus
from tfscore.operator.kube import Conflict, Rejected
from tfscore.operator.objects import merge_patch, owned_by, parse_time
from tfscore.operator.scoringjob.lifecycle import Event
from tfscore.operator.scoringschedule import builders
from tfscore.operator.scoringschedule.clock import ScheduleClock
from tfscore.operator.scoringschedule.decide import Decision, Observed, create_failed, decide
from tfscore.operator.scoringschedule.kube import ScheduleKube
from tfscore.operator.scoringschedule.metrics import ScheduleMetrics
from tfscore.operator.scoringschedule.runs import RunView, observe_run

log = logging.getLogger("tfscore.operator")

PostEvent = Callable[[Mapping[str, Any], Event], None]
CREATE_RETRY_SECONDS = 15.0


@dataclasses.dataclass
class Context:
    kube: ScheduleKube
    clock: ScheduleClock
    metrics: ScheduleMetrics
    post_event: PostEvent


@dataclasses.dataclass
class Outcome:
    schedule: dict[str, Any] | None = None        # the schedule as last written (for the cache)
    runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)   # runs created or read afresh
    gone: list[str] = dataclasses.field(default_factory=list)              # runs deleted or not found
    requeue_at: datetime | None = None            # schedule time
    retry_after: float | None = None              # real seconds (an API refusal)
    refresh: bool = False                         # our view was stale: `schedule` is a fresh read (None: gone)
    followup: bool = False                        # a run was created: decide again (records it) after the others


_VALIDATED: dict[str, tuple[ScoringSchedule | None, str | None]] = {}


def validate(body: Mapping[str, Any]) -> tuple[ScoringSchedule | None, str | None]:
    """The live manifest through the pydantic model, remembered by its text (at a busy fire time every schedule is
    reconciled twice; the JSON text costs a fifth of a validation)."""
    meta = body.get("metadata") or {}
    key = json.dumps([meta.get("namespace"), meta.get("name"), body.get("spec")], sort_keys=True)
    if key in _VALIDATED:
        return _VALIDATED[key]
    if len(_VALIDATED) > 100_000:
        _VALIDATED.clear()
    _VALIDATED[key] = result = _validate(meta, body)
    return result


def _validate(meta: Mapping[str, Any], body: Mapping[str, Any]) -> tuple[ScoringSchedule | None, str | None]:
    manifest = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
                "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")}, "spec": body.get("spec")}
    try:
        return ScoringSchedule.model_validate(manifest), None
    except ValidationError as exc:
        return None, format_validation_error(exc)


def _status(body: Mapping[str, Any]) -> ScoringScheduleStatus:
    try:
        return ScoringScheduleStatus.model_validate(body.get("status") or {})
    except ValidationError:
        log.warning("ignoring unreadable status of ScoringSchedule %s", body["metadata"]["name"])
        return ScoringScheduleStatus()


def _views(runs: Mapping[str, Mapping[str, Any]], uid: str) -> list[RunView]:
    return [v for v in (observe_run(r, uid) for r in runs.values()) if v is not None]


def _confirm(ctx: Context, ns: str, d: Decision, runs: dict[str, Mapping[str, Any]], out: Outcome) -> bool:
    """Re-read the runs the decision relies on being active; True when any was not (decide again)."""
    changed = False
    for name in d.confirm:
        fresh = ctx.kube.get_job(ns, name)
        if fresh is None:
            runs.pop(name, None)
            out.gone.append(name)
            changed = True
        else:
            old = runs.get(name) or {}
            runs[name] = fresh
            out.runs.append(fresh)
            changed |= (fresh.get("status") or {}).get("phase") != (old.get("status") or {}).get("phase")
    return changed


def reconcile(ctx: Context, body: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]]) -> Outcome:
    meta = body["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    now = ctx.clock.now()
    schedule, invalid = validate(body)
    status = _status(body)
    runs = dict(runs)
    created = parse_time(meta.get("creationTimestamp")) or now
    out = Outcome()

    def render(t: datetime, watermark: str | None, reference: str | None) -> dict[str, Any]:
        assert schedule is not None
        return builders.run_manifest(schedule, body, t, watermark, reference)

    def observe() -> Observed:
        return Observed(name=name, generation=meta.get("generation") or 0, created=ctx.clock.to_schedule(created),
                        spec=schedule.spec if schedule else None, invalid=invalid, runs=_views(runs, uid),
                        deleting=bool(meta.get("deletionTimestamp")))

    d = decide(status, observe(), now, render)
    if d.confirm and _confirm(ctx, ns, d, runs, out):
        d = decide(status, observe(), now, render)

    for run in d.delete:
        run_uid = ((runs.get(run) or {}).get("metadata") or {}).get("uid")
        if run_uid:
            ctx.kube.delete_job(ns, run, run_uid)
        out.gone.append(run)

    if d.run is not None and _create(ctx, body, d, out) and not d.delete:
        out.followup = True
        return out

    old, new = status.to_wire(), d.status.to_wire()
    if old != new or body.get("status") is None:
        try:
            out.schedule = ctx.kube.patch_schedule_status(ns, name, meta["resourceVersion"],
                                                          merge_patch(body.get("status") or {}, new))
        except Conflict:
            out.refresh, out.schedule = True, ctx.kube.get_schedule(ns, name)
            return out  # the run (if created) is adopted by the next decision: it finds it by name
    for event in d.events:
        ctx.post_event(body, event)
    _count(ctx.metrics, ns, name, d)
    out.requeue_at = d.requeue_at
    return out


def _create(ctx: Context, body: Mapping[str, Any], d: Decision, out: Outcome) -> bool:
    """Create (or adopt) the run; True when this call created it."""
    assert d.run is not None and d.create is not None
    t, uid = d.create, body["metadata"]["uid"]
    try:
        run, created = ctx.kube.create_run(dict(d.run))
    except Rejected as exc:
        create_failed(d, str(exc), ctx.clock.now())
        out.retry_after = CREATE_RETRY_SECONDS
        return False
    if not created and not owned_by(run, uid):
        create_failed(d, f"ScoringJob {run['metadata']['name']} already exists and is not a run of this schedule; "
                         "delete or rename it", ctx.clock.now())
        out.retry_after = CREATE_RETRY_SECONDS
        return False
    out.runs.append(run)
    if created:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        ctx.metrics.started.labels(ns, name).inc()
        ctx.metrics.lateness.observe(max(0.0, ctx.clock.late(t, ctx.clock.now())))
        if d.start_event is not None:
            ctx.post_event(body, d.start_event)
    return created


def _count(metrics: ScheduleMetrics, ns: str, name: str, d: Decision) -> None:
    for reason, n in d.skipped.items():
        metrics.skipped.labels(ns, name, reason).inc(n)
    for rec in d.finished:
        if rec.phase == "Succeeded":
            metrics.succeeded.labels(ns, name).inc()
        else:
            metrics.failed.labels(ns, name, rec.reason or "Failed").inc()
        for column, drift in (rec.drift or {}).items():
            metrics.set_drift(ns, name, column, drift.metric, drift.value)

