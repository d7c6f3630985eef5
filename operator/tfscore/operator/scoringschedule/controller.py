"""The ScoringSchedule loop: caches of schedules and their runs fed by kopf's watches, the operator's work queue
(workqueue.py) with a timer per schedule at its next fire time, and the server clock kept in sync.

Runs reach the cache through a kopf index on ScoringJobs (main.py): kopf holds every handler back until each listed
ScoringJob has been indexed, so a restarted operator never decides on a schedule before it knows all of its runs (an
active run missed at that moment would let Forbid start a second one, with the same watermark).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tfscore.api.schedule_run import LABEL_SCHEDULE
from tfscore.operator.objects import newer
from tfscore.operator.scoringschedule.reconcile import Context, Outcome, reconcile
from tfscore.operator.workqueue import WorkQueue

log = logging.getLogger("tfscore.operator")

Key = tuple[str, str]  # (namespace, schedule name)
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

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(FIRST_PROBES):
            try:
                await loop.run_in_executor(self._executor, self.ctx.kube.probe)
            except Exception as exc:  # noqa: BLE001 - the probe loop keeps trying; until then the local clock
                log.warning("cannot read the API server's clock yet: %s", exc)
                break
            await asyncio.sleep(0.125)
        await self.queue.start()
        self._probe = asyncio.create_task(self._probe_loop(), name="tfscore-clock-probe")

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self.queue.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def depth(self) -> int:
        return self.queue.depth()

    async def _probe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(random.uniform(*PROBE_SECONDS))
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
            self.ctx.metrics.forget(*key)
            return
        if newer(body, self.schedules.get(key)):
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
        if outcome.retry_after is not None:
            self.queue.enqueue(key, outcome.retry_after)
        if outcome.requeue_at is not None:
            # A timer fires at the next fire time by the server's clock (never before: clock.now() is a lower bound).
            self.queue.enqueue(key, max(0.001, self.ctx.clock.seconds_until(outcome.requeue_at)))
