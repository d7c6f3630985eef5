"""The ScoringSchedule loop: caches of schedules and their runs fed by kopf's watches, the operator's work queue
(workqueue.py) with a timer per schedule at its next fire time, and the server clock kept in sync.

Runs reach the cache through a kopf index on ScoringJobs (main.py): kopf holds every handler back until each listed
ScoringJob has been indexed, so a restarted operator never decides on a schedule before it knows all of its runs (an
active run missed at that moment would let Forbid start a second one, with the same watermark).
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from tfscore.api.schedule_run import LABEL_SCHEDULE
from tfscore.operator.objects import newer, parse_time, resource_version
from tfscore.operator.scoringschedule.reconcile import Context, Outcome, reconcile
from tfscore.operator.workqueue import WorkQueue

log = logging.getLogger("tfscore.operator")

Key = tuple[str, str]  # (namespace, schedule name)
HOLD_SECONDS, HOLD_MAX_SECONDS = 1.0, 30.0  # see admission_hold
PROBE_SECONDS = (5.0, 15.0)   # between clock probes (random, so their phases against the server's second vary)
FIRST_PROBES = 8              # at start, 1/8 s apart: the clock's bound is about 1/8 s wide before any reconcile


def _digest(run: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """What of a run the schedule reacts to (not its progress: that is the run's own business)."""
    if run is None:
        return ()
    status = run.get("status") or {}
    return (status.get("phase"), bool(status.get("result")), bool(run["metadata"].get("deletionTimestamp")),
            run["metadata"].get("uid"))


class ScheduleController:
    def __init__(self, ctx: Context, workers: int) -> None:
        self.ctx = ctx
        self.schedules: dict[Key, dict[str, Any]] = {}
        self.runs: dict[Key, dict[str, dict[str, Any]]] = {}
        self.queue = WorkQueue(self._reconcile, workers, name="tfscore-schedules")
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="schedule")
        self._probe: asyncio.Task[None] | None = None
        self._due: dict[Key, datetime] = {}              # each schedule's next fire time (until its run is created)
        self._due_heap: list[tuple[datetime, Key]] = []  # the same, earliest first (stale entries dropped lazily)

    async def start(self) -> None:
        try:  # one reading before any decision; the probe loop narrows it (FIRST_PROBES) while the operator starts
            await asyncio.get_running_loop().run_in_executor(self._executor, self.ctx.kube.probe)
        except Exception as exc:  # noqa: BLE001 - the probe loop keeps trying; until then the local clock
            log.warning("cannot read the API server's clock yet: %s", exc)
        await self.queue.start()
        self._probe = asyncio.create_task(self._probe_loop(), name="tfscore-clock-probe")

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self.queue.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def depth(self) -> int:
        return self.queue.depth()

    def admission_hold(self, job: Mapping[str, Any]) -> float:
        """How long the ScoringJob controller should wait before admitting `job` (creating its pods): while schedules
        are still creating their runs, a schedule's new run waits (up to HOLD_MAX_SECONDS after it was created), so at
        a fire time shared by many schedules the API server creates every run first and then admits them, instead of
        both at once (bench/schedules.py). Other ScoringJobs, and runs already started, never wait."""
        meta = job["metadata"]
        if LABEL_SCHEDULE not in (meta.get("labels") or {}) or not self.creating():
            return 0.0
        if (job.get("status") or {}).get("attempts"):
            return 0.0
        born = parse_time(meta.get("creationTimestamp"))
        if born is None or (datetime.now(UTC) - born).total_seconds() > HOLD_MAX_SECONDS:
            return 0.0
        return HOLD_SECONDS

    def creating(self) -> bool:
        """Whether some schedule is due and has not created its run yet."""
        heap = self._due_heap
        while heap and self._due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return bool(heap) and heap[0][0] <= self.ctx.clock.now()

    def _set_due(self, key: Key, when: datetime | None) -> None:
        if when is None:
            self._due.pop(key, None)
        elif self._due.get(key) != when:
            self._due[key] = when
            heapq.heappush(self._due_heap, (when, key))

    async def _probe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        for probe in itertools.count():
            await asyncio.sleep(0.125 if probe < FIRST_PROBES else random.uniform(*PROBE_SECONDS))
            try:
                await loop.run_in_executor(self._executor, self.ctx.kube.probe)
            except Exception as exc:  # noqa: BLE001 - a missed probe only widens the bound a little
                log.debug("clock probe failed: %s", exc)

    # ---- events (on the event loop)
    def schedule_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if event_type == "DELETED":
            self.schedules.pop(key, None)
            self.queue.forget(key)
            self._set_due(key, None)
            self.ctx.metrics.forget(*key)
            return
        old = self.schedules.get(key)
        if old is not None and resource_version(body) == resource_version(old):
            return  # the echo of our own status write (the cache has it already): nothing new to decide on
        if newer(body, old):
            self.schedules[key] = dict(body)
        self.queue.enqueue(key)

    def run_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = self._store_run(event_type, body)
        if key is not None and key in self.schedules:
            self.queue.enqueue(key)

    def _store_run(self, event_type: str | None, body: Mapping[str, Any]) -> Key | None:
        """Cache a run; its schedule's key when the schedule should look at it again."""
        meta = body["metadata"]
        schedule = (meta.get("labels") or {}).get(LABEL_SCHEDULE)
        if not schedule:
            return None
        key = (meta["namespace"], schedule)
        runs = self.runs.setdefault(key, {})
        old = runs.get(meta["name"])
        if event_type == "DELETED":
            if old is not None and old["metadata"].get("uid") == meta.get("uid"):
                del runs[meta["name"]]
            changed = old is not None
        elif newer(body, old):
            runs[meta["name"]] = dict(body)
            changed = _digest(body) != _digest(old)
        else:
            changed = False
        if not runs:
            self.runs.pop(key, None)
        return key if changed else None

    # ---- reconcile
    async def _reconcile(self, key: Key) -> None:
        body = self.schedules.get(key)
        if body is None:
            return
        runs = dict(self.runs.get(key, {}))
        ctx = contextvars.copy_context()  # kopf's event poster lives in context variables
        outcome: Outcome = await asyncio.get_running_loop().run_in_executor(
            self._executor, ctx.run, reconcile, self.ctx, body, runs)
        self._apply(key, body, outcome)

    def _apply(self, key: Key, body: Mapping[str, Any], outcome: Outcome) -> None:
        for run in outcome.runs:  # what this reconcile saw or made: no need to look again because of it
            self._store_run("ADDED", run)
        known = self.runs.get(key, {})
        for name in outcome.gone:
            known.pop(name, None)
        if outcome.refresh:  # outcome.schedule is a fresh read (or None: gone)
            if outcome.schedule is None:
                self.schedule_event("DELETED", body)
                return
            self.schedules[key] = outcome.schedule
            self.queue.enqueue(key)
            return
        if outcome.schedule is not None and key in self.schedules and newer(outcome.schedule, self.schedules[key]):
            self.schedules[key] = outcome.schedule
        if outcome.followup:  # to the back of the queue: other schedules due now create their runs first
            self._set_due(key, None)
            self.queue.enqueue(key)
        else:
            self._set_due(key, outcome.requeue_at)
        if outcome.retry_after is not None:
            self.queue.enqueue(key, outcome.retry_after)
        if outcome.requeue_at is not None:
            # A timer fires at the next fire time by the server's clock (never before: clock.now() is a lower bound).
            self.queue.enqueue(key, max(0.001, self.ctx.clock.seconds_until(outcome.requeue_at)))
