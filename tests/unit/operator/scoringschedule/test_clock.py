"""The API server's clock from Date headers: a lower bound that never runs ahead of the server, narrowing with samples;
and the test-only scaled schedule time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from tfscore.operator.scoringschedule.clock import WINDOW, ScheduleClock, ServerClock

SERVER_AHEAD = 1234.567  # the server's clock minus this process's monotonic clock


def date(t: float) -> str:
    return format_datetime(datetime.fromtimestamp(int(t), UTC), usegmt=True)  # truncated to the second, as Go does


class Fake:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def sample(clock: ServerClock, mono: Fake, rtt: float, where: float = 0.5) -> None:
    sent = mono.t
    stamped = sent + rtt * where + SERVER_AHEAD
    mono.t += rtt
    clock.observe(sent, mono.t, date(stamped))


def test_never_ahead_of_the_server_and_narrowing():
    mono, rng = Fake(), random.Random(7)
    clock = ServerClock(monotonic=mono)
    assert not clock.synced and clock.uncertainty() == float("inf")
    widths = []
    for _ in range(40):
        sample(clock, mono, rtt=0.004, where=rng.random())
        true_now = mono.t + SERVER_AHEAD
        assert clock.now().timestamp() <= true_now + 1e-6
        widths.append(clock.uncertainty())
        mono.t += rng.uniform(0.05, 3.0)
    assert widths[0] > 0.9 and widths[-1] < 0.1, widths
    assert 0 <= mono.t + SERVER_AHEAD - clock.now().timestamp() < 0.1


def test_a_stepped_server_clock_restarts_from_the_newest_sample():
    mono = Fake()
    clock = ServerClock(monotonic=mono)
    for _ in range(5):
        sample(clock, mono, rtt=0.01)
        mono.t += 0.37
    sent = mono.t
    mono.t += 0.01
    clock.observe(sent, mono.t, date(sent + SERVER_AHEAD + 3600))  # stepped an hour ahead
    assert abs(clock.now().timestamp() - (mono.t + SERVER_AHEAD + 3600)) < 1.0


def test_old_samples_leave_the_window_and_bad_headers_are_ignored():
    mono = Fake()
    clock = ServerClock(monotonic=mono)
    clock.observe(0.0, 0.1, None)
    clock.observe(0.0, 0.1, "not a date")
    assert not clock.synced
    sample(clock, mono, rtt=0.01)
    mono.t += WINDOW + 10
    sample(clock, mono, rtt=0.01)
    assert len(clock._samples) == 1


def test_scaled_schedule_time_for_tests():
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    server = ServerClock()
    plain = ScheduleClock(server)
    t = datetime(2026, 11, 24, 10, 0, 30, tzinfo=UTC)
    assert plain.to_schedule(t) == t
    fast = ScheduleClock(server, scale=10, anchor=anchor)
    assert fast.to_schedule(anchor + timedelta(seconds=6)) == anchor + timedelta(minutes=1)
    assert fast.late(anchor, anchor + timedelta(minutes=1)) == 6.0
    soon = fast.now() + timedelta(minutes=1)
    assert 5.5 < fast.seconds_until(soon) <= 6.0
    assert fast.seconds_until(fast.now() - timedelta(hours=1)) == 0.0
