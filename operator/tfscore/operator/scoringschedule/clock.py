"""The schedules' clock: the API server's time, never the operator's.

Choice: the `Date` header of the API server's own responses (Go's net/http stamps every response with the server's wall
clock, to the second). Each response bounds the offset θ between the server's clock and this process's monotonic
clock: the server stamped it at some instant between sending and receiving, and truncated that to the second, so
θ ∈ [Date - received, Date + 1 - sent). Intersecting the bounds of recent samples (responses of the schedule
controller's own calls, plus a small probe of /version every few seconds at varying phases) narrows θ to about the
round trip. `now()` is the LOWER bound: a run is never created before its scheduled time by the server's clock, and is
late by at most the width of the bound (reported by `uncertainty()`). A wrong operator clock (a node without NTP) does
not matter; only the monotonic rate does (samples older than WINDOW are dropped, and a server clock step, which makes
the bounds disjoint, restarts from the latest sample).

The alternative, a timestamp the server writes (an object's creationTimestamp or managedFields time, read back), costs a
write per reading and has the same one-second resolution.

Test-only: `ScheduleClock(scale=k, anchor=A)` maps server time s to A + (s - A)·k, so a `* * * * *` schedule fires every
60/k seconds (the operator tier runs with TFSCORE_SCHEDULE_TIME_SCALE; nothing else may set it). With k = 1 (always, in
a real install) every mapping is the identity.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

WINDOW = 600.0  # seconds of samples kept (monotonic-clock drift against the server stays far below a millisecond)


class ServerClock:
    """The API server's wall clock, estimated from Date headers (thread-safe: fed from reconcile threads)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._mono = monotonic
        self._lock = threading.Lock()
        self._samples: collections.deque[tuple[float, float, float]] = collections.deque(maxlen=256)
        self._bounds: tuple[float, float] | None = None

    def observe(self, sent: float, received: float, date_header: str | None) -> None:
        """One response: sent/received on this clock's monotonic time, and its Date header."""
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            return
        with self._lock:
            self._samples.append((sent, received, server))
            expired = False
            while self._samples and self._samples[0][1] < received - WINDOW:
                self._samples.popleft()
                expired = True
            if self._bounds is None or expired:  # recompute; else narrow by the new sample alone (every response)
                lo = max(d - r for s, r, d in self._samples)
                hi = min(d + 1 - s for s, r, d in self._samples)
            else:
                lo, hi = max(self._bounds[0], server - received), min(self._bounds[1], server + 1 - sent)
            if lo > hi:  # the server's clock was stepped: only the newest sample holds
                self._samples = collections.deque([self._samples[-1]], maxlen=256)
                lo, hi = server - received, server + 1 - sent
            self._bounds = (lo, hi)

    @property
    def synced(self) -> bool:
        return self._bounds is not None

    def uncertainty(self) -> float:
        """Width of the bound on the server's time, in seconds (how late a start can be from this alone)."""
        b = self._bounds
        return float("inf") if b is None else b[1] - b[0]

    def now(self) -> datetime:
        """The earliest time the server's clock can show now (the local clock until the first response)."""
        b = self._bounds
        if b is None:
            return datetime.now(UTC)
        return datetime.fromtimestamp(self._mono() + b[0], UTC)


class ScheduleClock:
    """Schedule time: the server's clock, scaled for tests (see the module docstring)."""

    def __init__(self, server: ServerClock, scale: float = 1.0, anchor: datetime | None = None) -> None:
        self.server, self.scale = server, scale
        self.anchor = anchor or datetime(2026, 1, 1, tzinfo=UTC)

    def to_schedule(self, t: datetime) -> datetime:
        """An API server timestamp (creationTimestamp) in schedule time."""
        if self.scale == 1.0:
            return t
        return self.anchor + (t - self.anchor) * self.scale

    def now(self) -> datetime:
        return self.to_schedule(self.server.now())

    def seconds_until(self, t: datetime) -> float:
        """Real seconds from now until schedule time `t` (0 when past)."""
        return max(0.0, (t - self.now()).total_seconds() / self.scale)

    def late(self, t: datetime, at: datetime) -> float:
        """Real seconds schedule time `at` is after `t`."""
        return (at - t) / timedelta(seconds=1) / self.scale
