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

A value that does not parse stops the operator at start with the variable's name in the message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, ClassVar

DEFAULT_RUNTIME_IMAGE = "localhost/tfscore/runtime:0.1.0"


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
                values[field.name] = kind(raw)
            except ValueError:
                raise ValueError(f"{var}={raw!r}: expected {kind.__name__}") from None
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
        if problems:
            raise ValueError("; ".join(problems))

    def image_for(self, gpu: int) -> str:
        """The pinned runtime image for a job that asks for `gpu` GPUs per executor."""
        return (self.runtime_image_gpu or self.runtime_image) if gpu > 0 else self.runtime_image

    def backoff(self, failures: int) -> float:
        """Delay before the next attempt after `failures` failed attempts: base·2^(n-1), capped (Job-like)."""
        return min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** max(0, failures - 1))
