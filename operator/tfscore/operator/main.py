"""kopf registrations, and nothing else: watch ScoringJobs, driver pods and ScoringSchedules, feed the controllers,
report health.

Only low-level `on.event` handlers are used: kopf keeps no per-object state on our objects (no finalizers, no
last-handled annotations), so a ScoringJob deletes instantly with or without the operator running, and one writer (the
controller's reconcile) owns the status. Both watches list before they watch, which is how a restarted operator resumes.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from tfscore.api import common, scoringjob, scoringschedule
from tfscore.api.schedule_run import LABEL_SCHEDULE
from tfscore.operator.config import OperatorConfig
from tfscore.operator.controller import Controller
from tfscore.operator.kube import Kube, api_client
from tfscore.operator.kueue_api import KueueApi
from tfscore.operator.metrics import Metrics
from tfscore.operator.scoringjob import names, queueing
from tfscore.operator.scoringjob.lifecycle import Event
from tfscore.operator.scoringjob.reconcile import Context, PostEvent
from tfscore.operator.scoringschedule import setup as schedules

log = logging.getLogger("tfscore.operator")
COMPONENT = "tfscore-operator"
DRIVER_PODS = {names.LABEL_ROLE: names.ROLE_DRIVER, names.LABEL_ATTEMPT: kopf.PRESENT}


class NoDiffBase(kopf.DiffBaseStorage):
    """We register no change-detecting handlers, so kopf needs no diff base; its default deep-copies every watched
    object on every event to build one (measured: the operator's top CPU cost under a burst of ScoringJobs)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def _event_poster(kube: Kube, executor: ThreadPoolExecutor) -> PostEvent:
    def post(obj: Mapping[str, Any], event: Event) -> None:  # fire and forget: an event must never slow a reconcile down
        future = executor.submit(kube.post_event, dict(obj), event.type, event.reason, event.message, COMPONENT)
        future.add_done_callback(lambda f: f.exception() and log.warning("event not posted: %s", f.exception()))
    return post


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: OperatorConfig = memo.config
    settings.posting.level = logging.WARNING  # kopf's own k8s events: problems only
    settings.watching.label_selectors["v1", "pods"] = f"{names.LABEL_ROLE}={names.ROLE_DRIVER}"
    settings.networking.request_timeout = 60
    settings.persistence.diffbase_storage = NoDiffBase()
    api = api_client(config.workers + config.schedule_workers + 4)  # both kinds' workers, events, the clock probe
    kube = Kube(api)
    memo.event_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="events")
    metrics = Metrics(phases=lambda: controller.phases())
    post_event = _event_poster(kube, memo.event_executor)
    controller = Controller(Context(kube=kube, config=config, metrics=metrics, post_event=post_event,
                                    kueue=KueueApi(api) if config.kueue else None), workers=config.workers)
    memo.schedules = schedules.controller(api, config, metrics.registry, post_event)
    controller.hold = memo.schedules.admission_hold
    if config.kueue:  # only tfscore's Workloads, filtered by the API server
        settings.watching.label_selectors[queueing.GROUP, queueing.WORKLOADS] = names.LABEL_JOB
        if not controller.ctx.kueue.served():
            # kopf notices CRDs created later, but only if discovery already lists them at the CRD's last event: a
            # Kueue installed after the operator may go unwatched (admissions unseen) until the operator restarts.
            log.error("TFSCORE_KUEUE is on but the API server does not serve %s/%s workloads: install Kueue (>= 0.15), "
                      "then restart the operator; queued ScoringJobs say so in their status meanwhile",
                      queueing.GROUP, queueing.VERSION)
    metrics.serve(memo.metrics_port)
    memo.controller = controller
    await controller.start()
    await memo.schedules.start()
    if "@sha256:" not in config.runtime_image:
        log.warning("TFSCORE_RUNTIME_IMAGE=%s is not pinned by digest (repo@sha256:…)", config.runtime_image)
    log.info("tfscore operator started: runtime image %s, %d workers", config.runtime_image, config.workers)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await memo.schedules.stop()
    await memo.controller.stop()
    memo.event_executor.shutdown(wait=True)


@kopf.on.event(common.GROUP, common.VERSION, scoringjob.PLURAL)
async def scoringjob_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.job_event(event.get("type"), event["object"])
    if event.get("type") == "DELETED":
        memo.schedules.run_event("DELETED", event["object"])


@kopf.index(common.GROUP, common.VERSION, scoringjob.PLURAL, labels={LABEL_SCHEDULE: kopf.PRESENT})
def schedule_runs(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A schedule's run, seen before any handler runs: kopf starts no handler until every listed ScoringJob passed its
    indexes, so the schedules never decide on a partial list of their runs. Nothing is stored in kopf's index."""
    memo.schedules.run_event(None, dict(body))


@kopf.on.event(common.GROUP, common.VERSION, scoringschedule.PLURAL)
async def scoringschedule_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.schedules.schedule_event(event.get("type"), event["object"])


@kopf.on.event("v1", "pods", labels=DRIVER_PODS)
async def driver_pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.pod_event(event.get("type"), event["object"])


async def workload_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Registered by run_operator only with TFSCORE_KUEUE on (without Kueue's CRDs kopf would warn about it)."""
    memo.controller.workload_event(event.get("type"), event["object"])


@kopf.on.probe(id="reconcileQueue")
def reconcile_queue(memo: kopf.Memo, **_: Any) -> int:
    return memo.controller.depth() + memo.schedules.depth()


def run_operator(namespaces: list[str], liveness: str, metrics_port: int, standalone: bool,
                 priority: int | None = None, peering_name: str | None = None) -> None:
    """`tfscore operator`: configure from the environment (fail fast on bad values) and run kopf until signalled.

    With peering (replicas > 1), kopf pauses every operator that sees a live peer of a higher priority, and all of them
    when priorities tie; so each replica draws a random priority: one leads, the others stand by and take over when its
    peering record expires.
    """
    config = OperatorConfig.from_env()
    if config.kueue:
        kopf.on.event(queueing.GROUP, queueing.VERSION, queueing.WORKLOADS,
                      labels={names.LABEL_JOB: kopf.PRESENT})(workload_event)
    kopf.configure(verbose=False)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # not a line per watch event
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # not a line per liveness probe
    if priority is None and not standalone:
        priority = random.SystemRandom().randint(1, 2**31 - 1)
    kopf.run(
        standalone=standalone,
        priority=priority,
        peering_name=None if standalone else peering_name,
        namespaces=namespaces,
        clusterwide=not namespaces,
        liveness_endpoint=liveness or None,
        memo=kopf.Memo(config=config, metrics_port=metrics_port),
    )
