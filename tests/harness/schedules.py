"""ScoringSchedule manifests for tests, the operator tier's scaled schedule time, and a test-side view of a namespace's
schedules and their runs.

The operator tier runs its operator with TFSCORE_SCHEDULE_TIME_SCALE=SCALE (a test-only knob, see
tfscore/operator/scoringschedule/clock.py): schedule time runs SCALE times faster than the API server's clock, from
ANCHOR, so `* * * * *` fires every 60/SCALE real seconds and a test needs seconds, not minutes, per fire time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from harness.common import wait_for

SCALE = 20.0
ANCHOR = datetime.now(UTC).replace(second=0, microsecond=0)
OPERATOR_ENV = {"TFSCORE_SCHEDULE_TIME_SCALE": str(SCALE), "TFSCORE_SCHEDULE_TIME_ANCHOR": ANCHOR.isoformat()}
TICK = 60.0 / SCALE  # real seconds between the fire times of `* * * * *`


def scheduled(real: float) -> datetime:
    """Schedule time at real (epoch) time `real`."""
    return ANCHOR + (datetime.fromtimestamp(real, UTC) - ANCHOR) * SCALE


def real(t: datetime) -> float:
    """The real (epoch) time schedule time `t` happens at."""
    return (ANCHOR + (t - ANCHOR) / SCALE).timestamp()


def next_minute(after_real: float, every: int = 1) -> datetime:
    """The first schedule-time minute divisible by `every` after real time `after_real` (a `*/every * * * *` fire
    time; `every` divides 60)."""
    t = scheduled(after_real).replace(second=0, microsecond=0)
    return t + timedelta(minutes=every - t.minute % every)


def poll(what: str, fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 20.0,
         interval: float = 0.1) -> Any:
    """wait_for on a value: fetch() until ok(value), then the value."""
    box: list[Any] = []

    def check() -> bool:
        box[:] = [fetch()]
        return ok(box[0])

    wait_for(what, check, timeout=timeout, interval=interval)
    return box[0]


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def scoringschedule(name: str, schedule: str = "* * * * *", template: dict[str, Any] | None = None,
                    **spec: Any) -> dict[str, Any]:
    job = {"model": {"uri": "s3a://models/risk/"}, "input": {"uri": "s3a://in/t=${scheduledTime:%H%M}/"},
           "output": {"uri": "s3a://out/${scheduleName}/${scheduledTime:%H%M}/"}, **(template or {})}
    return {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringSchedule", "metadata": {"name": name},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": job}, **spec}}


class Schedules:
    """Create/read ScoringSchedules and list their runs (ScoringJobs labelled tfscore.io/schedule=<name>)."""

    def __init__(self, core: Any, custom: Any, namespace: str) -> None:
        self.core, self.custom, self.ns = core, custom, namespace

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringschedules", body)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringschedules", name)

    def patch(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringschedules", name,
                                                          {"spec": spec})

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def runs(self, name: str) -> list[dict[str, Any]]:
        items = self.custom.list_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringjobs",
                                                          label_selector=f"tfscore.io/schedule={name}")["items"]
        return sorted(items, key=lambda j: j["metadata"]["annotations"]["tfscore.io/scheduled-time"])

    def run_names(self, name: str) -> list[str]:
        return [r["metadata"]["name"] for r in self.runs(name)]

    def wait_runs(self, name: str, count: int, timeout: float = 4 * TICK) -> list[dict[str, Any]]:
        return poll(f"{count} run(s) of {name}", lambda: self.runs(name), lambda r: len(r) >= count,
                    timeout=timeout, interval=0.05)

    def events(self, name: str, reason: str | None = None) -> list[Any]:
        evs = self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={name}").items
        return [e for e in evs if reason is None or e.reason == reason]

    def wait_event(self, name: str, reason: str, timeout: float = 4 * TICK) -> Any:
        return wait_for(f"event {reason} on {name}", lambda: next(iter(self.events(name, reason)), None),
                        timeout=timeout)

    def sleep_until(self, t: datetime, extra: float = 0.0) -> None:
        time.sleep(max(0.0, real(t) + extra - time.time()))
