"""Reconcile one ScoringJob: read what is there, let `lifecycle.decide` choose, apply its Decision.

Thin by design: validation is the pydantic model, manifests come from `builders`, meaning from `status`/`lifecycle`.
What lives here is only the order of API calls and their idempotency (adopt-then-create: every child has a deterministic
name; 409 means it is already there and is adopted when it is ours).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import yaml
from pydantic import ValidationError

from tfscore.api import contract
from tfscore.api.common import format_validation_error
from tfscore.api.scoringjob import ScoringJob, ScoringJobSpec, ScoringJobStatus
from tfscore.api.scoringpolicy import ScoringPolicySpec, default_spec
from tfscore.operator.config import OperatorConfig
from tfscore.operator.kube import Conflict, Kube, Rejected
from tfscore.operator.metrics import Metrics
from tfscore.operator.objects import merge_patch, owned_by, parse_time
from tfscore.operator.scoringjob import builders, isolation, names, policy, queued
from tfscore.operator.scoringjob.lifecycle import FINISHED, Decision, Event, Observed, create_rejected, decide

log = logging.getLogger("tfscore.operator")

PostEvent = Callable[[Mapping[str, Any], Event], None]


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


def scoring_policy(ctx: Context, ns: str) -> ScoringPolicySpec | str:
    """The namespace's ScoringPolicy (TFSCORE_POLICY), or the defaults with the operator's own images and driver account
    when there is none; a message when it does not parse."""
    config = ctx.config
    found = ctx.kube.get_policy(ns, config.policy_name) if config.policy_name else None
    if found is None:
        return default_spec([config.runtime_image, config.runtime_image_gpu], [config.driver_service_account])
    try:
        return ScoringPolicySpec.model_validate(found.get("spec") or {})
    except ValidationError as exc:
        return f"the namespace's ScoringPolicy {config.policy_name} is invalid: {format_validation_error(exc, 'spec')}"


def _read_bound(kube: Kube, ns: str, name: str, uid: str, status: ScoringJobStatus) -> tuple[ScoringJob | None, str]:
    """The spec the run is bound to, from the latest attempt's ConfigMap; (None, why) when its job.json is not the one
    status.specHash recorded (someone replaced the ConfigMap), (None, "") when there is none to read."""
    cm = kube.get("ConfigMap", ns, names.config_map_name(name, max(1, status.attempts)))
    if cm is None or not owned_by(cm, uid):
        return None, ""
    text = (cm.get("data") or {}).get(contract.SPEC_KEY)
    if text is not None and status.spec_hash and isolation.sha256(text) != status.spec_hash:
        return None, (f"ConfigMap {cm['metadata']['name']}: job.json is not the spec this run is bound to (its sha256 "
                      "differs from status.specHash); delete and re-create the ScoringJob")
    try:
        return ScoringJob.model_validate(json.loads(text or "")), ""
    except (ValueError, ValidationError):
        log.warning("ConfigMap %s/%s has no readable job.json; rebuilding it", ns, cm["metadata"]["name"])
        return None, ""


def _create_attempt(ctx: Context, body: Mapping[str, Any], job: ScoringJob, d: Decision, now: datetime,
                    placement: Mapping[str, builders.Placement]) -> dict[str, Any]:
    """The job's auth Secret (once) and NetworkPolicy, this attempt's immutable ConfigMap, the Service, then the driver
    pod; each adopted if already there (and ours). Records the Secret, the spec's hash and the pod's uid in d.status.
    `placement`: per role, where the queue's admission puts the pods (empty when not queued)."""
    attempt, st = d.create_attempt or 0, d.status
    uid, name, ns = body["metadata"]["uid"], job.metadata.name, body["metadata"]["namespace"]
    if not st.auth_secret:  # generateName: a fresh name nobody could have created first; never read back
        secret, _ = ctx.kube.create(isolation.auth_secret(job, body, secrets.token_bytes(32)))
        st.auth_secret = secret["metadata"]["name"]
    existing, created = ctx.kube.create(isolation.network_policy(job, body))
    if not created:
        _check_owner(existing, uid, name)
    executors = placement.get(names.ROLE_EXECUTOR)
    cm = builders.config_map(job, body, ctx.config, attempt, st.auth_secret, executors)
    existing, created = ctx.kube.create(cm)
    if not created:
        _check_owner(existing, uid, name)
        earlier = _auth_secret_of(existing)
        if existing.get("data") != cm["data"] and earlier and earlier != st.auth_secret:
            st.auth_secret = earlier  # made before a crash that lost the status write: its pod may already run
            cm = builders.config_map(job, body, ctx.config, attempt, st.auth_secret, executors)
        # Ours but stale (another operator version, or an admission that places executors elsewhere): immutable, so
        # replaced.
        if existing.get("data") != cm["data"]:
            ctx.kube.delete_config_map(ns, cm["metadata"]["name"], existing["metadata"]["uid"])
            raise Conflict(f"ConfigMap {ns}/{cm['metadata']['name']} was stale; replaced")
    st.spec_hash = st.spec_hash or isolation.sha256(cm["data"][contract.SPEC_KEY])
    existing, created = ctx.kube.create(builders.driver_service(job, body))
    if not created:
        _check_owner(existing, uid, name)
    deadline = None
    if job.spec.active_deadline_seconds and st.start_time:
        deadline = job.spec.active_deadline_seconds - (now - st.start_time).total_seconds()
    pod, created = ctx.kube.create(builders.driver_pod(job, body, ctx.config, attempt, deadline_seconds=deadline,
                                                       auth_secret=st.auth_secret,
                                                       spec_sha256=isolation.data_sha256(cm),
                                                       placement=placement.get(names.ROLE_DRIVER)))
    st.driver_pod_uid = pod["metadata"]["uid"]
    if not created:
        _check_owner(pod, uid, name)
    elif attempt == 1:
        born = parse_time(body["metadata"].get("creationTimestamp"))
        if born is not None:
            ctx.metrics.admission.observe(max(0.0, (now - born).total_seconds()))
    return pod


def _auth_secret_of(cm: Mapping[str, Any]) -> str | None:
    """The auth Secret an attempt's ConfigMap was built with (its executor template names it)."""
    try:
        template = yaml.safe_load((cm.get("data") or {}).get(contract.EXECUTOR_TEMPLATE_KEY) or "")
        volumes = template["spec"]["volumes"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None
    return next((v["secret"].get("secretName") for v in volumes
                 if v.get("name") == names.AUTH_VOLUME and isinstance(v.get("secret"), dict)), None)


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

    reason = "Invalid"
    if status.attempts > 0 or any(p is not None for p in pods.values()):
        tampered = ""
        if bound is None:
            bound, tampered = _read_bound(ctx.kube, ns, name, uid, status)
        if bound is None and not tampered and live is not None and (
                not status.spec_hash or isolation.sha256(builders.job_json(live, uid, ctx.config)) == status.spec_hash):
            bound = live  # the ConfigMap is gone: the live spec, if it is still the one the run is bound to
        spec = bound.spec if bound else None
        spec_changed = bool(bound and (live is None or _bound_fields(live.spec, not live.spec.image)
                                       != _bound_fields(bound.spec, not live.spec.image)))
        invalid = None if bound else (tampered or invalid or "the spec this run is bound to is gone (its ConfigMap "
                                      "was deleted and the live spec differs)")
        reason = "SpecTampered" if tampered else reason
    else:
        if live is not None and not (status.phase in FINISHED and status.observed_generation == meta.get("generation")):
            found = scoring_policy(ctx, ns)  # only before the first start: a running job keeps its admission
            invalid = found if isinstance(found, str) else policy.admit(live, body, found, ctx.config)
        bound, spec, spec_changed = (live, live.spec, False) if live and not invalid else (None, None, False)
    out.bound = bound

    if status.attempts and status.attempts not in pods:  # not in the cache: ask the API server before judging
        found_pod = ctx.kube.get("Pod", ns, names.driver_pod_name(name, status.attempts))
        pods[status.attempts] = found_pod if found_pod is not None and owned_by(found_pod, uid) else None
        if pods[status.attempts] is not None:
            out.pods.append(pods[status.attempts])  # type: ignore[arg-type]
    current = pods.get(status.attempts)
    if current is not None and status.driver_pod_uid and current["metadata"].get("uid") != status.driver_pod_uid:
        pods[status.attempts] = None  # another pod under our pod's name: not adopted; ours is gone

    suspend = live.spec.suspend if live else bool((body.get("spec") or {}).get("suspend"))
    queue, workload, queue_view = queued.view(ctx, body, workloads)
    obs = Observed(name=name, generation=meta.get("generation") or 0, spec=spec, invalid=invalid,
                   invalid_reason=reason, suspend=suspend, spec_changed=spec_changed, pods=pods, queue=queue_view,
                   output_holder=output_holder)
    d = decide(status, obs, now, ctx.config.backoff)
    _record(d.status, status, pods, bound, uid, ctx.config)

    try:
        if d.create_attempt and bound is not None:
            placement = queued.placements(ctx, workload) if queue_view is not None else {}
            out.pods.append(_create_attempt(ctx, body, bound, d, now, placement))
    except Blocked as exc:  # nothing started: say why (status + event) and try again later
        if exc.warn and status.message != str(exc):
            ctx.post_event(body, Event("Warning", "CreateFailed", str(exc)))
            try:
                out.job = ctx.kube.patch_job_status(ns, name, meta["resourceVersion"],
                                                    {"phase": status.phase or "Pending", "message": str(exc)})
            except Conflict:
                pass
        out.requeue_after = exc.delay
        return out
    except Conflict:  # our own stale ConfigMap was replaced: decide again at once
        out.requeue_after = 0.5
        return out
    except Rejected as exc:  # refused for good (Pod Security, a missing account, 422): Failed after the startup timeout
        kept = status.model_copy(update={"auth_secret": d.status.auth_secret})  # the Secret made before the refusal
        d = create_rejected(kept, bound.spec if bound else live.spec, str(exc), now)  # type: ignore[union-attr]
    for attempt in d.delete_pods:
        pod_name = names.driver_pod_name(name, attempt)
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


def _record(st: ScoringJobStatus, before: ScoringJobStatus, pods: Mapping[int, Mapping[str, Any] | None],
            bound: ScoringJob | None, uid: str, config: OperatorConfig) -> None:
    """The current attempt's pod uid (an adopted pod, or one recorded before uids were) and the bound spec's hash."""
    if st.attempts != before.attempts:
        st.driver_pod_uid = None
    pod = pods.get(st.attempts)
    if pod is not None and not st.driver_pod_uid:
        st.driver_pod_uid = pod["metadata"].get("uid")
    if st.attempts and not st.spec_hash and bound is not None and pod is not None:
        st.spec_hash = isolation.sha256(builders.job_json(bound, uid, config))


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
