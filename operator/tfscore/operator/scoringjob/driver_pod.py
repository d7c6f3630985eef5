"""Pure mapping: a driver pod (as the API server reports it) → what it means for the ScoringJob.

`observe_pod` reads phase, conditions, container states, the termination message (the runtime's Result JSON on success;
on failure the runtime's Failure JSON {reason, message}, or one plain line of cause from an older or crashed driver) and
the progress annotation into a `PodView`. No clock, no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from tfscore.api import contract
from tfscore.api.contract import Failure, Progress, Result
from tfscore.operator.objects import parse_time

PodState = Literal["missing", "pending", "running", "succeeded", "failed"]

# Waiting reasons that mean the container will never start on its own (no point waiting for the startup timeout).
FATAL_WAITING = {"InvalidImageName", "ErrImageNeverPull"}
MAX_MESSAGE = 1024
# Failure reasons a retry cannot fix: the job fails at once, whatever backoffLimit says.
PERMANENT_REASONS = frozenset({"DriftExceeded"})


@dataclasses.dataclass(frozen=True)
class PodView:
    state: PodState
    reason: str = ""
    message: str = ""
    fatal: bool = False              # pending and will never run
    permanent: bool = False          # failed in a way no retry fixes (PERMANENT_REASONS)
    created: datetime | None = None
    exit_code: int | None = None
    progress: Progress | None = None
    result: Result | None = None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def cause_line(message: str) -> str:
    """The cause in a termination message: the last non-empty line (a log tail's last line is the exception)."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return _clip(lines[-1]) if lines else ""


def parse_progress(pod: Mapping[str, Any]) -> Progress | None:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(contract.PROGRESS_ANNOTATION)
    if not raw:
        return None
    try:
        progress = Progress.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return None
    return progress.model_copy(update={"percent": max(0, min(100, progress.percent))})


def parse_result(message: str | None) -> Result | None:
    if not message:
        return None
    try:
        return Result.model_validate(json.loads(message))
    except (ValueError, ValidationError):
        return None


def parse_failure(message: str | None) -> Failure | None:
    """The runtime's Failure JSON, or None (a plain line, or nothing)."""
    if not message or not message.lstrip().startswith("{"):
        return None
    try:
        return Failure.model_validate(json.loads(message))
    except (ValueError, ValidationError):
        return None


def _container_status(pod: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for cs in statuses:
        if cs.get("name") == name:
            return cs
    return statuses[0] if statuses else {}


def _condition(pod: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return {}


def observe_pod(pod: Mapping[str, Any] | None, container: str = "driver") -> PodView:
    """What the driver pod says about its attempt (see the table in tests/unit/test_status.py)."""
    if pod is None:
        return PodView("missing", "DriverPodDeleted", "the driver pod was deleted before it finished")
    meta, st = pod.get("metadata") or {}, pod.get("status") or {}
    created = parse_time(meta.get("creationTimestamp"))
    progress = parse_progress(pod)
    cs = _container_status(pod, container)
    state = cs.get("state") or {}
    terminated = state.get("terminated")
    phase = st.get("phase") or "Pending"
    common = {"created": created, "progress": progress}

    if terminated or phase in ("Succeeded", "Failed"):
        terminated = terminated or {}
        code = terminated.get("exitCode")
        message = terminated.get("message") or ""
        if (code == 0) or (code is None and phase == "Succeeded"):
            return PodView("succeeded", "Completed", "", exit_code=0, result=parse_result(message), **common)
        if st.get("reason"):  # pod-level: Evicted, DeadlineExceeded, NodeLost, UnexpectedAdmissionError …
            return PodView("failed", st["reason"], _clip(st.get("message") or cause_line(message)), exit_code=code,
                           **common)
        reason = terminated.get("reason") or "Error"
        cause = cause_line(message)
        if reason == "OOMKilled":
            text = f"driver killed: out of memory (exit code {code}); raise driver.memory or driver.memoryOverhead"
            return PodView("failed", "OOMKilled", text, exit_code=code, **common)
        failure = parse_failure(message)
        if failure is not None:
            return PodView("failed", failure.reason, _clip(failure.message) or failure.reason, exit_code=code,
                           permanent=failure.reason in PERMANENT_REASONS, **common)
        what = f"driver exited with code {code}" if code is not None else f"driver terminated ({reason})"
        return PodView("failed", "DriverFailed" if reason in ("Error", "Completed") else reason,
                       f"{what}: {cause}" if cause else what, exit_code=code, **common)

    if phase == "Running":
        return PodView("running", "Running", "", **common)

    waiting = state.get("waiting") or {}
    if waiting.get("reason") and waiting["reason"] != "ContainerCreating":
        return PodView("pending", waiting["reason"], _clip(waiting.get("message") or ""),
                       fatal=waiting["reason"] in FATAL_WAITING, **common)
    scheduled = _condition(pod, "PodScheduled")
    if scheduled.get("status") == "False":
        return PodView("pending", scheduled.get("reason") or "Unschedulable", _clip(scheduled.get("message") or ""),
                       **common)
    if scheduled.get("status") == "True":
        return PodView("pending", "ContainerCreating", "", **common)
    return PodView("pending", "PodPending", "waiting to be scheduled", **common)
