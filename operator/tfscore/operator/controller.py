"""The reconcile loop: a cache fed by kopf's watch events, a de-duplicating work queue, timed requeues, N workers.

kopf watches ScoringJobs and driver pods and hands every event to `job_event` / `pod_event` (cheap: cache + enqueue).
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
from tfscore.operator.scoringjob import builders
from tfscore.operator.scoringjob.reconcile import Context, Outcome, reconcile

log = logging.getLogger("tfscore.operator")

Key = tuple[str, str]  # (namespace, name)
ERROR_DELAYS = (1, 2, 5, 10, 30, 60)


def _rv(body: Mapping[str, Any] | None) -> int:
    try:
        return int((body or {}).get("metadata", {}).get("resourceVersion", 0))
    except (TypeError, ValueError):
        return 0


def _newer(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Keep what we wrote ourselves until the watch catches up (resourceVersions are etcd revisions)."""
    if old is None or old["metadata"].get("uid") != new["metadata"].get("uid"):
        return True
    return _rv(new) >= _rv(old) or not _rv(new)


class Controller:
    def __init__(self, ctx: Context, workers: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.ctx, self.workers, self.clock = ctx, workers, clock
        self.jobs: dict[Key, dict[str, Any]] = {}
        self.pods: dict[Key, dict[int, dict[str, Any]]] = collections.defaultdict(dict)
        self.bound: dict[str, ScoringJob] = {}          # uid → the manifest its run is bound to
        self._queue: asyncio.Queue[Key] | None = None
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._errors: collections.Counter[Key] = collections.Counter()
        self._verified: dict[Key, float] = {}  # monotonic time the current driver pod was last read by name
        self._tasks: list[asyncio.Task[None]] = []
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile")
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        for key in list(self._queued):  # events that arrived before start
            self._queue.put_nowait(key)
        self._tasks = [asyncio.create_task(self._work(), name=f"tfscore-worker-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for timer in self._timers.values():
            timer.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def phases(self) -> dict[str, int]:
        counts: collections.Counter[str] = collections.Counter()
        for body in list(self.jobs.values()):
            counts[(body.get("status") or {}).get("phase") or "Unknown"] += 1
        return dict(counts)

    def depth(self) -> int:
        return len(self._queued) + len(self._active)

    # ---- events (called by kopf handlers on the event loop)
    def job_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if event_type == "DELETED":
            old = self.jobs.pop(key, None)
            if old is not None:
                self.bound.pop(old["metadata"]["uid"], None)
            self.pods.pop(key, None)
            self._verified.pop(key, None)
            timer = self._timers.pop(key, None)
            if timer:
                timer.cancel()
            return
        if _newer(body, self.jobs.get(key)):
            self.jobs[key] = dict(body)
        self.enqueue(key)

    def pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = self._store_pod(event_type, body)
        if key in self.jobs:
            self.enqueue(key)

    def _store_pod(self, event_type: str | None, body: Mapping[str, Any]) -> Key | None:
        labels = body["metadata"].get("labels") or {}
        try:
            key = (body["metadata"]["namespace"], labels[builders.LABEL_JOB])
            attempt = int(labels[builders.LABEL_ATTEMPT])
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
        if delay > 0:
            assert self._loop is not None
            timer = self._timers.get(key)
            when = self._loop.time() + delay
            if timer is not None and timer.when() <= when:
                return
            if timer is not None:
                timer.cancel()
            self._timers[key] = self._loop.call_at(when, self._fire, key)
            return
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            if self._queue is not None:
                self._queue.put_nowait(key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    async def _work(self) -> None:
        assert self._queue is not None and self._loop is not None
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await self._reconcile(key)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.enqueue(key)

    async def _reconcile(self, key: Key) -> None:
        body = self.jobs.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return  # gone or going: garbage collection removes what it owns
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        pods = dict(self.pods.get(key, {}))
        resync = self._resync_due(key, body)
        if resync is not None:  # forget the cached pod: reconcile reads it by name (absent: a deletion we missed)
            pods.pop(resync, None)
        bound = self.bound.get(body["metadata"]["uid"])
        ctx = contextvars.copy_context()  # kopf's event poster lives in context variables
        assert self._loop is not None
        try:
            outcome: Outcome = await self._loop.run_in_executor(
                self._executor, ctx.run, reconcile, self.ctx, body, pods, bound, self.clock())
        except Exception:  # noqa: BLE001 - any API or programming error: log, back off, try again
            self._errors[key] += 1
            delay = ERROR_DELAYS[min(self._errors[key], len(ERROR_DELAYS)) - 1]
            log.exception("reconcile of %s/%s failed; retrying in %ss", *key, delay)
            self.ctx.metrics.reconciles.labels("error").inc()
            self.enqueue(key, delay)
            return
        self._errors.pop(key, None)
        self.ctx.metrics.reconciles.labels("refresh" if outcome.refresh else "ok").inc()
        if resync is not None:
            name = builders.driver_pod_name(key[1], resync)
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
