"""Reconcile one ScoringJob: read what is there, let `lifecycle.decide` choose, apply its Decision.

Thin by design: validation is the pydantic model, manifests come from `builders`, meaning from `status`/`lifecycle`.
What lives here is only the order of API calls and their idempotency (adopt-then-create: every child has a deterministic
name; 409 means it is already there and is adopted when it is ours).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tfscore.api import contract
from tfscore.api.common import format_validation_error
from tfscore.api.scoringjob import ScoringJob, ScoringJobSpec, ScoringJobStatus
from tfscore.operator.config import OperatorConfig
from tfscore.operator.kube import Conflict, Kube, Rejected
from tfscore.operator.metrics import Metrics
from tfscore.operator.objects import merge_patch, owned_by, parse_time
from tfscore.operator.scoringjob import builders, queued
from tfscore.operator.scoringjob.lifecycle import Decision, Event, Observed, decide

log = logging.getLogger("tfscore.operator")

PostEvent = Callable[[Mapping[str, Any], Event], None]
REJECTED_RETRY_SECONDS = 15.0


@dataclasses.dataclass
class Context:
    kube: Kube
    config: OperatorConfig
    metrics: Metrics
    post_event: PostEvent
    kueue: Any = None                             # KueueApi when the Kueue integration is on (TFSCORE_KUEUE)


@dataclasses.dataclass
class Outcome:
    requeue_after: float | None = None
    job: dict[str, Any] | None = None             # the ScoringJob as last written (for the cache)
    pods: list[dict[str, Any]] = dataclasses.field(default_factory=list)   # driver pods created or adopted
    deleted_pods: list[str] = dataclasses.field(default_factory=list)
    bound: ScoringJob | None = None               # the manifest the run is bound to (ConfigMap job.json)
    refresh: bool = False                         # our view was stale: `job` is a fresh read (None: gone)
    workload: dict[str, Any] | None = None        # the Kueue Workload as last written or read (for the cache)
    workload_gone: str | None = None              # a Workload deleted here


class Blocked(Exception):
    """A child's name is taken by an object we do not own; retry after `delay` seconds."""

    def __init__(self, message: str, delay: float, warn: bool) -> None:
        super().__init__(message)
        self.delay, self.warn = delay, warn


def validate(body: Mapping[str, Any]) -> tuple[ScoringJob | None, str | None]:
    """The live manifest through the pydantic model → (job, None) or (None, message naming each bad field)."""
    meta = body.get("metadata") or {}
    manifest = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
                "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")}, "spec": body.get("spec")}
    try:
        return ScoringJob.model_validate(manifest), None
    except ValidationError as exc:
        return None, format_validation_error(exc)


def _status(body: Mapping[str, Any]) -> ScoringJobStatus:
    try:
        return ScoringJobStatus.model_validate(body.get("status") or {})
    except ValidationError:
        log.warning("ignoring unreadable status of %s", body["metadata"]["name"])
        return ScoringJobStatus()


def _bound_fields(spec: ScoringJobSpec, drop_image: bool) -> dict[str, Any]:
    wire = spec.to_wire()
    wire.pop("suspend", None)
    if drop_image:
        wire.pop("image", None)
    return wire


def _check_owner(obj: Mapping[str, Any], uid: str, name: str) -> None:
    if owned_by(obj, uid):
        return
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    what = f"{obj.get('kind', 'object')} {obj['metadata']['name']}"
    if any(r.get("kind") == "ScoringJob" and r.get("name") == name for r in refs):
        raise Blocked(f"{what} still belongs to a deleted ScoringJob of the same name; waiting for garbage collection",
                      delay=2.0, warn=False)
    raise Blocked(f"{what} already exists and is not owned by this ScoringJob; delete or rename it", delay=30.0,
                  warn=True)


def _read_bound(kube: Kube, ns: str, name: str, uid: str) -> ScoringJob | None:
    cm = kube.get("ConfigMap", ns, builders.config_map_name(name))
    if cm is None or not owned_by(cm, uid):
        return None
    try:
        return ScoringJob.model_validate(json.loads((cm.get("data") or {})[contract.SPEC_KEY]))
    except (KeyError, ValueError, ValidationError):
        log.warning("ConfigMap %s/%s has no readable job.json; rebuilding it", ns, cm["metadata"]["name"])
        return None


def _create_attempt(ctx: Context, body: Mapping[str, Any], job: ScoringJob, d: Decision, now: datetime,
                    placement: Mapping[str, builders.Placement]) -> dict[str, Any]:
    """ConfigMap (this attempt's spark.properties and executor template), Service, then the driver pod; each adopted if
    already there. `placement`: per role, where the queue's admission puts the pods (empty when not queued)."""
    attempt, st = d.create_attempt or 0, d.status
    uid, name, ns = body["metadata"]["uid"], job.metadata.name, body["metadata"]["namespace"]
    cm = builders.config_map(job, body, ctx.config, attempt, placement.get(builders.ROLE_EXECUTOR))
    existing, created = ctx.kube.create(cm)
    if not created:
        _check_owner(existing, uid, name)
        have = existing.get("data") or {}
        changed = {k: cm["data"][k] for k in (contract.PROPERTIES_KEY, contract.EXECUTOR_TEMPLATE_KEY)
                   if have.get(k) != cm["data"][k]}  # a readmission may place executors elsewhere
        if changed:
            ctx.kube.patch_config_map(ns, cm["metadata"]["name"], changed)
    existing, created = ctx.kube.create(builders.driver_service(job, body))
    if not created:
        _check_owner(existing, uid, name)
    deadline = None
    if job.spec.active_deadline_seconds and st.start_time:
        deadline = job.spec.active_deadline_seconds - (now - st.start_time).total_seconds()
    pod, created = ctx.kube.create(builders.driver_pod(job, body, ctx.config, attempt, deadline_seconds=deadline,
                                                       placement=placement.get(builders.ROLE_DRIVER)))
    if not created:
        _check_owner(pod, uid, name)
    elif attempt == 1:
        born = parse_time(body["metadata"].get("creationTimestamp"))
        if born is not None:
            ctx.metrics.admission.observe(max(0.0, (now - born).total_seconds()))
    return pod


def reconcile(ctx: Context, body: Mapping[str, Any], pods: Mapping[int, Mapping[str, Any] | None],
              bound: ScoringJob | None, now: datetime,
              workloads: Mapping[str, Mapping[str, Any]] | None = None, output_holder: str | None = None) -> Outcome:
    meta = body["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    status = _status(body)
    live, invalid = validate(body)
    out = Outcome()
    # Driver pods of a deleted ScoringJob of the same name (garbage collection still running) are not our attempts.
    pods = {a: p for a, p in pods.items() if p is None or owned_by(p, uid)}

    if status.attempts > 0 or any(p is not None for p in pods.values()):
        bound = bound or _read_bound(ctx.kube, ns, name, uid) or live
        spec = bound.spec if bound else None
        spec_changed = bool(bound and (live is None or _bound_fields(live.spec, not live.spec.image)
                                       != _bound_fields(bound.spec, not live.spec.image)))
        invalid = None if bound else invalid
    else:
        bound, spec, spec_changed = live, live.spec if live else None, False
    out.bound = bound

    if status.attempts and status.attempts not in pods:  # not in the cache: ask the API server before judging
        found = ctx.kube.get("Pod", ns, builders.driver_pod_name(name, status.attempts))
        pods[status.attempts] = found if found is not None and owned_by(found, uid) else None
        if pods[status.attempts] is not None:
            out.pods.append(pods[status.attempts])  # type: ignore[arg-type]

    suspend = live.spec.suspend if live else bool((body.get("spec") or {}).get("suspend"))
    queue, workload, queue_view = queued.view(ctx, body, workloads)
    obs = Observed(name=name, generation=meta.get("generation") or 0, spec=spec, invalid=invalid, suspend=suspend,
                   spec_changed=spec_changed, pods=pods, queue=queue_view, output_holder=output_holder)
    d = decide(status, obs, now, ctx.config.backoff)

    try:
        if d.create_attempt and bound is not None:
            placement = queued.placements(ctx, workload) if queue_view is not None else {}
            out.pods.append(_create_attempt(ctx, body, bound, d, now, placement))
    except (Blocked, Rejected) as exc:  # nothing started: say why (status + event) and try again later
        delay, warn = (exc.delay, exc.warn) if isinstance(exc, Blocked) else (REJECTED_RETRY_SECONDS, True)
        if warn and status.message != str(exc):
            ctx.post_event(body, Event("Warning", "CreateFailed", str(exc)))
            try:
                out.job = ctx.kube.patch_job_status(ns, name, meta["resourceVersion"],
                                                    {"phase": status.phase or "Pending", "message": str(exc)})
            except Conflict:
                pass
        out.requeue_after = delay
        return out
    for attempt in d.delete_pods:
        pod_name = builders.driver_pod_name(name, attempt)
        ctx.kube.delete_pod(ns, pod_name)
        out.deleted_pods.append(pod_name)
    synced = queued.sync(ctx, body, bound, d, queue, workload, pods, suspend, now)
    out.workload, out.workload_gone = synced.workload, synced.gone
    if synced.problem:  # the Workload could not be written: the job stays where it is, and says why
        if status.message != synced.problem:
            d.events.append(Event("Warning", "QueueFailed", synced.problem))
        d.status.message = synced.problem
    if synced.retry is not None:
        d.requeue_after = synced.retry if d.requeue_after is None else min(d.requeue_after, synced.retry)

    old, new = status.to_wire(), d.status.to_wire()
    if old != new or body.get("status") is None:
        try:
            out.job = ctx.kube.patch_job_status(ns, name, meta["resourceVersion"],
                                                merge_patch(body.get("status") or {}, new))
        except Conflict:
            out.refresh, out.job = True, ctx.kube.get_job(ns, name)
            return out
    if d.delete_job:
        ctx.kube.delete_job(ns, name, uid)
    for event in d.events:
        ctx.post_event(body, event)
    _count(ctx.metrics, status, d)
    out.requeue_after = d.requeue_after
    return out


def _count(metrics: Metrics, before: ScoringJobStatus, d: Decision) -> None:
    st = d.status
    if st.failed > before.failed:
        metrics.attempts_failed.inc(st.failed - before.failed)
    for transition in d.transitions:
        if transition == "started":
            metrics.started.inc()
            continue
        if transition == "admitted":
            metrics.admissions.inc()
            waited = queued.queued_seconds(before.conditions, st.conditions)
            if waited is not None:
                metrics.queue_wait.observe(waited)
            continue
        if transition == "evicted":
            metrics.evictions.labels(next((c.reason for c in st.conditions if c.type == "Queued"), "Unknown")).inc()
            continue
        if transition == "succeeded":
            metrics.succeeded.inc()
            if st.result is not None:
                metrics.rows.inc(st.result.rows_out)
        else:
            reason = next((e.reason for e in reversed(d.events) if e.type == "Warning"), "Unknown")
            metrics.failed.labels(reason).inc()
        if st.start_time and st.completion_time:
            metrics.duration.observe(max(0.0, (st.completion_time - st.start_time).total_seconds()))
