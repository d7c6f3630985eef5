"""The ScoringJob reconcile loop: a cache fed by kopf's watch events, the work queue (workqueue.py), N workers.

kopf watches ScoringJobs and driver pods (and, with Kueue on, tfscore's Workloads) and hands every event to
`job_event` / `pod_event` / `workload_event` (cheap: cache + enqueue).
Workers take one key at a time (never the same key twice at once) and run `handlers.reconcile` in a thread pool on the
shared API client. A reconcile returns when to look again (backoff, startup timeout, deadline, TTL); that becomes a timer.
Everything the operator knows is rebuilt from the API server on start (kopf lists before it watches), so a restarted
operator carries on where the last one stopped. While it runs, a watch restart (410 Gone) relists without reporting
what was deleted in the gap, so an active job is also re-read on a timer: every `resync_seconds` its current driver pod
is fetched by name instead of trusted from the cache (a deletion nobody reported is then seen as one).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from tfscore.api.scoringjob import ScoringJob
from tfscore.operator.objects import newer as _newer
from tfscore.operator.scoringjob import names, outputs
from tfscore.operator.scoringjob.reconcile import Context, Outcome, reconcile
from tfscore.operator.workqueue import WorkQueue

log = logging.getLogger("tfscore.operator")

Key = tuple[str, str]  # (namespace, name)


class Controller:
    def __init__(self, ctx: Context, workers: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.ctx, self.workers, self.clock = ctx, workers, clock
        self.jobs: dict[Key, dict[str, Any]] = {}
        self.pods: dict[Key, dict[int, dict[str, Any]]] = collections.defaultdict(dict)
        self.workloads: dict[Key, dict[str, dict[str, Any]]] = collections.defaultdict(dict)  # job → name → Workload
        self.bound: dict[str, ScoringJob] = {}          # uid → the manifest its run is bound to
        self.hold: Callable[[Mapping[str, Any]], float] = lambda body: 0.0  # seconds to wait before looking at it
        self.queue = WorkQueue(self._reconcile, workers, name="tfscore",
                               on_error=lambda key: self.ctx.metrics.reconciles.labels("error").inc())
        self._verified: dict[Key, float] = {}  # monotonic time the current driver pod was last read by name
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile")

    # ---- lifecycle
    async def start(self) -> None:
        await self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def phases(self) -> dict[str, int]:
        counts: collections.Counter[str] = collections.Counter()
        for body in list(self.jobs.values()):
            counts[(body.get("status") or {}).get("phase") or "Unknown"] += 1
        return dict(counts)

    def depth(self) -> int:
        return self.queue.depth()

    # ---- events (called by kopf handlers on the event loop)
    def job_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if event_type == "DELETED":
            old = self.jobs.pop(key, None)
            if old is not None:
                self.bound.pop(old["metadata"]["uid"], None)
            self.pods.pop(key, None)
            self.workloads.pop(key, None)
            self._verified.pop(key, None)
            self.queue.forget(key)
            return
        if _newer(body, self.jobs.get(key)):
            self.jobs[key] = dict(body)
        self.enqueue(key)

    def pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = self._store_pod(event_type, body)
        if key in self.jobs:
            self.enqueue(key)

    def workload_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = self._store_workload(event_type, body)
        if key in self.jobs:
            self.enqueue(key)

    def _store_workload(self, event_type: str | None, body: Mapping[str, Any]) -> Key | None:
        job = (body["metadata"].get("labels") or {}).get(names.LABEL_JOB)
        if not job:
            return None
        key, name = (body["metadata"]["namespace"], job), body["metadata"]["name"]
        if event_type == "DELETED":
            self.workloads.get(key, {}).pop(name, None)
            if not self.workloads.get(key):
                self.workloads.pop(key, None)
        elif _newer(body, self.workloads[key].get(name)):
            self.workloads[key][name] = dict(body)
        return key

    def _store_pod(self, event_type: str | None, body: Mapping[str, Any]) -> Key | None:
        labels = body["metadata"].get("labels") or {}
        try:
            key = (body["metadata"]["namespace"], labels[names.LABEL_JOB])
            attempt = int(labels[names.LABEL_ATTEMPT])
        except (KeyError, ValueError):
            return None
        if event_type == "DELETED":
            pods = self.pods.get(key, {})
            if (pods.get(attempt) or {}).get("metadata", {}).get("uid") == body["metadata"].get("uid"):
                del pods[attempt]
            if not pods:
                self.pods.pop(key, None)
        elif _newer(body, self.pods[key].get(attempt)):
            self.pods[key][attempt] = dict(body)
        return key

    # ---- queue
    def enqueue(self, key: Key, delay: float = 0.0) -> None:
        self.queue.enqueue(key, delay)

    async def _reconcile(self, key: Key) -> None:
        body = self.jobs.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return  # gone or going: garbage collection removes what it owns
        if (wait := self.hold(body)) > 0:  # e.g. a schedule's run while other schedules still create theirs
            self.enqueue(key, wait)
            return
        pods = dict(self.pods.get(key, {}))
        resync = self._resync_due(key, body)
        if resync is not None:  # forget the cached pod: reconcile reads it by name (absent: a deletion we missed)
            pods.pop(resync, None)
        workloads = dict(self.workloads.get(key, {}))
        bound = self.bound.get(body["metadata"]["uid"])
        ctx = contextvars.copy_context()  # kopf's event poster lives in context variables
        holder = outputs.holder(body, self.jobs.values())
        outcome: Outcome = await asyncio.get_running_loop().run_in_executor(
            self._executor, ctx.run, reconcile, self.ctx, body, pods, bound, self.clock(), workloads, holder)
        self.ctx.metrics.reconciles.labels("refresh" if outcome.refresh else "ok").inc()
        if resync is not None:
            name = names.driver_pod_name(key[1], resync)
            if not any(p["metadata"]["name"] == name for p in outcome.pods):
                self.pods.get(key, {}).pop(resync, None)
        self._apply(key, body, outcome)

    def _resync_due(self, key: Key, body: Mapping[str, Any]) -> int | None:
        """The attempt whose pod is due for a read by name: an active job's, once per resync period."""
        status = body.get("status") or {}
        attempt = status.get("attempts") or 0
        if not attempt or status.get("phase") not in ("Pending", "Running"):
            self._verified.pop(key, None)
            return None
        now = time.monotonic()
        if now - self._verified.setdefault(key, now) < self.ctx.config.resync_seconds:
            return None
        self._verified[key] = now
        return int(attempt)

    def _apply(self, key: Key, body: Mapping[str, Any], outcome: Outcome) -> None:
        uid = body["metadata"]["uid"]
        if outcome.bound is not None and key in self.jobs:
            self.bound[uid] = outcome.bound
        for pod in outcome.pods:
            self._store_pod("ADDED", pod)
        if outcome.workload is not None:
            self._store_workload("ADDED", outcome.workload)
        if outcome.workload_gone is not None:
            self.workloads.get(key, {}).pop(outcome.workload_gone, None)
        pods = self.pods.get(key, {})
        for name in outcome.deleted_pods:
            for attempt, pod in list(pods.items()):
                if pod["metadata"]["name"] == name:
                    del pods[attempt]
        if outcome.refresh:  # outcome.job is a fresh read (or None: the ScoringJob is gone)
            if outcome.job is None:
                self.job_event("DELETED", body)
                return
            self.jobs[key] = outcome.job
            self.enqueue(key)
            return
        if outcome.job is not None and key in self.jobs and _newer(outcome.job, self.jobs[key]):
            self.jobs[key] = outcome.job
        phase = ((outcome.job or body).get("status") or {}).get("phase")
        delay = outcome.requeue_after
        if phase in ("Pending", "Running"):  # an active job is looked at again within the resync period
            delay = min(delay, self.ctx.config.resync_seconds) if delay is not None else self.ctx.config.resync_seconds
        if delay is not None:
            self.enqueue(key, delay)
