"""Operator configuration, read once from the environment (the chart sets these on the operator Deployment).

| Variable                            | Default                              | Meaning                                          |
|-------------------------------------|--------------------------------------|--------------------------------------------------|
| TFSCORE_RUNTIME_IMAGE               | localhost/tfscore/runtime:0.1.0      | Runtime image for driver + executors (pin it by  |
|                                     |                                      | digest: repo@sha256:…)                           |
| TFSCORE_RUNTIME_IMAGE_GPU           | (TFSCORE_RUNTIME_IMAGE)              | Image for jobs with executor.gpu > 0             |
| TFSCORE_IMAGE_PULL_POLICY           | IfNotPresent                         | Always, IfNotPresent or Never                    |
| TFSCORE_DRIVER_SERVICE_ACCOUNT      | tfscore-driver                       | Driver ServiceAccount when the spec names none   |
| TFSCORE_RUN_AS_USER                 | 1000                                 | Numeric uid/gid of driver and executor pods      |
| TFSCORE_BACKOFF_BASE_SECONDS        | 10                                   | Retry delay after the first failed attempt;      |
|                                     |                                      | doubles per failure                              |
| TFSCORE_BACKOFF_MAX_SECONDS         | 360                                  | Cap of the retry delay                           |
| TFSCORE_WORKERS                     | 8                                    | Concurrent reconciles (threads, API connections) |
| TFSCORE_POLICY                      | (none)                               | Name of the ScoringPolicy read in a job's        |
|                                     |                                      | namespace; none there (or unset): the defaults   |
|                                     |                                      | with the images and driver account above         |
| TFSCORE_RESYNC_SECONDS              | 30                                   | Active jobs re-read their driver pod this often  |
|                                     |                                      | (a deletion a watch restart missed is seen)      |
| TFSCORE_SCHEDULE_WORKERS            | 16                                   | Concurrent ScoringSchedule reconciles: at a fire |
|                                     |                                      | time shared by many schedules, runs are created  |
|                                     |                                      | this many at once                                |
| TFSCORE_SCHEDULE_TIME_SCALE         | 1                                    | TEST ONLY: schedule time runs this many times    |
|                                     |                                      | faster than the API server's clock               |
| TFSCORE_SCHEDULE_TIME_ANCHOR        | 2026-01-01T00:00:00Z                 | TEST ONLY: where scaled and server time agree    |
| TFSCORE_KUEUE                       | false                                | true: ScoringJobs labelled kueue.x-k8s.io/       |
|                                     |                                      | queue-name wait for a Kueue Workload's admission |

A value that does not parse stops the operator at start with the variable's name in the message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

DEFAULT_RUNTIME_IMAGE = "localhost/tfscore/runtime:0.1.0"


def _flag(raw: str) -> bool:
    """true/false (any case); bool("false") would be True."""
    value = raw.lower()
    if value not in ("true", "false"):
        raise ValueError(raw)
    return value == "true"


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    runtime_image_gpu: str = ""
    image_pull_policy: str = "IfNotPresent"
    driver_service_account: str = "tfscore-driver"
    run_as_user: int = 1000
    backoff_base_seconds: float = 10.0
    backoff_max_seconds: float = 360.0
    workers: int = 8
    policy_name: str = ""
    resync_seconds: float = 30.0
    schedule_workers: int = 16
    schedule_time_scale: float = 1.0
    schedule_time_anchor: str = "2026-01-01T00:00:00Z"
    kueue: bool = False

    _ENV: ClassVar[dict[str, str]] = {
        "runtime_image": "TFSCORE_RUNTIME_IMAGE",
        "runtime_image_gpu": "TFSCORE_RUNTIME_IMAGE_GPU",
        "image_pull_policy": "TFSCORE_IMAGE_PULL_POLICY",
        "driver_service_account": "TFSCORE_DRIVER_SERVICE_ACCOUNT",
        "run_as_user": "TFSCORE_RUN_AS_USER",
        "backoff_base_seconds": "TFSCORE_BACKOFF_BASE_SECONDS",
        "backoff_max_seconds": "TFSCORE_BACKOFF_MAX_SECONDS",
        "workers": "TFSCORE_WORKERS",
        "policy_name": "TFSCORE_POLICY",
        "resync_seconds": "TFSCORE_RESYNC_SECONDS",
        "schedule_workers": "TFSCORE_SCHEDULE_WORKERS",
        "schedule_time_scale": "TFSCORE_SCHEDULE_TIME_SCALE",
        "schedule_time_anchor": "TFSCORE_SCHEDULE_TIME_ANCHOR",
        "kueue": "TFSCORE_KUEUE",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            var = cls._ENV.get(field.name)
            raw = env.get(var, "").strip() if var else ""
            if not raw:
                continue
            kind = type(field.default)
            try:
                values[field.name] = _flag(raw) if kind is bool else kind(raw)
            except ValueError:
                raise ValueError(f"{var}={raw!r}: expected {'true or false' if kind is bool else kind.__name__}") \
                    from None
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        problems = []
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            problems.append(f"TFSCORE_IMAGE_PULL_POLICY={self.image_pull_policy!r}: use Always, IfNotPresent or Never")
        if self.run_as_user < 1:
            problems.append(f"TFSCORE_RUN_AS_USER={self.run_as_user}: must be a non-root uid (>= 1)")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < self.backoff_base_seconds:
            problems.append("TFSCORE_BACKOFF_BASE_SECONDS must be >= 0 and <= TFSCORE_BACKOFF_MAX_SECONDS")
        if self.workers < 1:
            problems.append(f"TFSCORE_WORKERS={self.workers}: must be >= 1")
        if self.resync_seconds <= 0:
            problems.append(f"TFSCORE_RESYNC_SECONDS={self.resync_seconds:g}: must be > 0")
        if self.schedule_workers < 1:
            problems.append(f"TFSCORE_SCHEDULE_WORKERS={self.schedule_workers}: must be >= 1")
        if not 0 < self.schedule_time_scale <= 3600:
            problems.append(f"TFSCORE_SCHEDULE_TIME_SCALE={self.schedule_time_scale}: must be > 0 and <= 3600 "
                            "(and 1 outside tests)")
        if self.anchor() is None:
            problems.append(f"TFSCORE_SCHEDULE_TIME_ANCHOR={self.schedule_time_anchor!r}: expected a time such as "
                            "2026-01-01T00:00:00Z")
        if problems:
            raise ValueError("; ".join(problems))

    def anchor(self) -> datetime | None:
        try:
            t = datetime.fromisoformat(self.schedule_time_anchor.replace("Z", "+00:00"))
        except ValueError:
            return None
        return t if t.tzinfo is not None else None

    def image_for(self, gpu: int) -> str:
        """The pinned runtime image for a job that asks for `gpu` GPUs per executor."""
        return (self.runtime_image_gpu or self.runtime_image) if gpu > 0 else self.runtime_image

    def backoff(self, failures: int) -> float:
        """Delay before the next attempt after `failures` failed attempts: base·2^(n-1), capped (Job-like)."""
        return min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** max(0, failures - 1))
