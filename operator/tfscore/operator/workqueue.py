"""The one work queue of the operator (every kind's controller has an instance): keys to reconcile, de-duplicated, never
the same key twice at once (an event during a reconcile marks it dirty: one more pass after it), timed requeues (the
earliest wins), N worker tasks, and a key whose reconcile raised retried after a growing delay."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger("tfscore.operator")

ERROR_DELAYS = (1, 2, 5, 10, 30, 60)


class WorkQueue:
    def __init__(self, process: Callable[[Hashable], Awaitable[None]], workers: int, name: str = "tfscore",
                 on_error: Callable[[Hashable], None] = lambda key: None) -> None:
        self.process, self.workers, self.name, self.on_error = process, workers, name, on_error
        self._queue: asyncio.Queue[Hashable] | None = None
        self._queued: set[Hashable] = set()
        self._active: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._errors: collections.Counter[Hashable] = collections.Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        for key in list(self._queued):  # events that arrived before start
            self._queue.put_nowait(key)
        self._tasks = [asyncio.create_task(self._work(), name=f"{self.name}-worker-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for timer in self._timers.values():
            timer.cancel()

    def depth(self) -> int:
        return len(self._queued) + len(self._active)

    def enqueue(self, key: Hashable, delay: float = 0.0) -> None:
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

    def forget(self, key: Hashable) -> None:
        """The object is gone: drop its timer and error count."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._errors.pop(key, None)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            timer = self._timers.pop(key, None)  # this pass decides afresh when to look again
            if timer is not None:
                timer.cancel()
            try:
                await self.process(key)
                self._errors.pop(key, None)
            except Exception:  # noqa: BLE001 - any API or programming error: log, back off, try again
                self._errors[key] += 1
                delay = ERROR_DELAYS[min(self._errors[key], len(ERROR_DELAYS)) - 1]
                log.exception("reconcile of %s failed; retrying in %ss", key, delay)
                self.on_error(key)
                self.enqueue(key, delay)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.enqueue(key)
