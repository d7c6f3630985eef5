"""Thin: a queued ScoringJob's Workload — find it, read what its admission refers to, apply what queueing.plan says.

Called by reconcile around lifecycle.decide: `view` before (Kueue's word for the decision), `placements` when the
decision starts an attempt (ResourceFlavor reads), `sync` after (create, update, (de)activate, release after an
eviction, Finished, delete). Every write is idempotent or guarded by resourceVersion, so a stale Workload cache or a
crash between two writes only costs another reconcile.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tfscore.api.scoringjob import Phase, ScoringJob
from tfscore.operator.kube import Conflict, Rejected
from tfscore.operator.scoringjob import builders, queueing
from tfscore.operator.scoringjob.driver_pod import observe_pod
from tfscore.operator.scoringjob.lifecycle import Decision, Event
from tfscore.operator.scoringjob.queueing import QueueView

log = logging.getLogger("tfscore.operator")
RETRY_SECONDS = 15.0


@dataclasses.dataclass
class Synced:
    workload: dict[str, Any] | None = None    # the Workload as last written or read (for the controller's cache)
    gone: str | None = None                   # the name of a Workload deleted here
    problem: str | None = None                # a write Kueue or the API server refused: say it in the status
    retry: float | None = None


def enabled(ctx: Any) -> bool:
    return bool(ctx.config.kueue and getattr(ctx, "kueue", None) is not None)


def view(ctx: Any, body: Mapping[str, Any], workloads: Mapping[str, Mapping[str, Any]] | None
         ) -> tuple[str | None, dict[str, Any] | None, QueueView | None]:
    """(queue, the job's Workload from the cache, QueueView): all None when the job is not queued."""
    queue = queueing.queue_name(body) if enabled(ctx) else None
    meta = body["metadata"]
    wl = (workloads or {}).get(queueing.workload_name(meta["name"], meta["uid"]))
    wl = dict(wl) if wl is not None else None
    return queue, wl, queueing.observe_workload(wl, queue) if queue else None


def placements(ctx: Any, wl: Mapping[str, Any] | None) -> dict[str, builders.Placement]:
    """The admitted Workload's placements per pod set (each named ResourceFlavor read once)."""
    if wl is None:
        return {}
    flavors = {name: ctx.kueue.resource_flavor(name) for name in queueing.flavors_of(wl)}
    missing = [name for name, flavor in flavors.items() if flavor is None]
    if missing:
        log.warning("ResourceFlavor(s) %s of Workload %s not found: no node labels/tolerations from them", missing,
                    wl["metadata"]["name"])
    return queueing.placements(wl, {k: v for k, v in flavors.items() if v is not None})


def pods_active(pods: Mapping[int, Mapping[str, Any] | None]) -> bool:
    """A driver pod still exists unfinished (or is being deleted): the quota is still in use."""
    return any(p is not None and ((p.get("metadata") or {}).get("deletionTimestamp")
                                  or observe_pod(p).state in ("pending", "running")) for p in pods.values())


def _desired(ctx: Any, body: Mapping[str, Any], job: ScoringJob, queue: str, suspend: bool) -> dict[str, Any]:
    priority = ctx.kueue.priority_class(job.spec.priority_class_name)
    return queueing.build_workload(job, body, ctx.config, queue, priority, active=not suspend)


def sync(ctx: Any, body: Mapping[str, Any], job: ScoringJob | None, d: Decision, queue: str | None,
         wl: dict[str, Any] | None, pods: Mapping[int, Mapping[str, Any] | None], suspend: bool,
         now: datetime) -> Synced:
    """Apply queueing.plan for the decided status `d.status` (job: the spec the run is bound to, None if invalid)."""
    if not enabled(ctx):
        if queueing.queue_name(body) and d.create_attempt == 1:
            ctx.post_event(body, Event("Warning", "QueueIgnored", f"label {queueing.QUEUE_LABEL} is set but the "
                                       "operator's Kueue integration is off (TFSCORE_KUEUE / chart kueue.enabled): "
                                       "started without waiting for a queue"))
        return Synced()
    desired_hash = None
    if job is not None and queue and wl is not None and not queueing.observe_workload(wl, queue).reserved:
        desired_hash = queueing.spec_hash(queue, queueing.pod_sets(job, body, ctx.config),
                                          job.spec.priority_class_name)
    plan = queueing.plan(wl, queue, d.status.phase, suspend, pods_active(pods), desired_hash)
    if not plan:
        return Synced(wl)
    ns, kueue = body["metadata"]["namespace"], ctx.kueue
    try:
        if plan.delete and wl is not None:
            kueue.delete_workload(ns, wl["metadata"]["name"], wl["metadata"]["uid"])
            return Synced(gone=wl["metadata"]["name"])
        if plan.create and job is not None and queue:
            wl, _ = kueue.create_workload(_desired(ctx, body, job, queue, suspend))
            return Synced(wl)
        assert wl is not None
        name = wl["metadata"]["name"]
        if plan.finish is not None:
            text = d.status.message or ("the ScoringJob succeeded" if plan.finish else "the ScoringJob failed")
            return Synced(kueue.apply_workload_status(queueing.finished_apply(wl, plan.finish, text, now)))
        if plan.update_spec and job is not None and queue:
            want = _desired(ctx, body, job, queue, suspend)
            spec = {k: want["spec"].get(k) for k in ("queueName", "podSets", "priorityClassRef", "priority")}
            wl = kueue.patch_workload(ns, name, {"metadata": {
                "resourceVersion": wl["metadata"]["resourceVersion"], "labels": want["metadata"]["labels"],
                "annotations": want["metadata"]["annotations"]}, "spec": spec})
        if plan.active is not None:
            wl = kueue.patch_workload(ns, name, {"spec": {"active": plan.active}})
        if plan.release:
            wl = _release(kueue, ns, name, wl, now)
        return Synced(wl)
    except Rejected as exc:
        return Synced(wl, problem=str(exc), retry=RETRY_SECONDS)
    except Conflict:
        return Synced(None, retry=1.0)  # re-read at the next reconcile


def _release(kueue: Any, ns: str, name: str, wl: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The eviction acknowledged; on a stale resourceVersion re-read once and retry if it still applies."""
    try:
        return kueue.patch_workload_status(ns, name, queueing.release_patch(wl, now))
    except Conflict:
        fresh = kueue.get_workload(ns, name)
        conds = queueing.conditions(fresh)
        if fresh is None or (conds.get("Evicted") or {}).get("status") != "True" \
                or (conds.get("QuotaReserved") or {}).get("status") != "True":
            return fresh
        return kueue.patch_workload_status(ns, name, queueing.release_patch(fresh, now))


def queued_seconds(before: list[Any], after: list[Any]) -> float | None:
    """Time spent queued, when the Queued condition just flipped True → False (admission)."""
    old = next((c for c in before if c.type == Phase.queued), None)
    new = next((c for c in after if c.type == Phase.queued), None)
    if old is None or new is None or old.status != "True" or new.status != "False":
        return None
    if old.last_transition_time is None or new.last_transition_time is None:
        return None
    return max(0.0, (new.last_transition_time - old.last_transition_time).total_seconds())
