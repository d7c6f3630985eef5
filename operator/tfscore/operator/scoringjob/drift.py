"""Drift in a run's result, for its status (pure): which prediction columns moved beyond the threshold, in one sentence,
and the DriftExceeded condition a run with `drift.action: warn` gets when it succeeds anyway. (With `action: fail` the
runtime fails the run with reason DriftExceeded, and lifecycle does not retry it.)"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from tfscore.api.contract import Result
from tfscore.api.scoringjob import ScoringJobStatus
from tfscore.operator.objects import set_condition

CONDITION = "DriftExceeded"


class DriftLike(Protocol):
    metric: str
    value: float
    threshold: float | None
    exceeded: bool


def describe(drift: Iterable[tuple[str, DriftLike]]) -> str:
    """'risk_score psi 0.41 > 0.25, …' for the columns beyond their threshold ('' when none)."""
    return ", ".join(f"{col} {d.metric} {d.value:.3g}" + (f" > {d.threshold:g}" if d.threshold is not None else "")
                     for col, d in drift if d.exceeded)


def exceeded(result: Result | None) -> str:
    stats = result.statistics if result is not None else None
    return describe(sorted(stats.drift.items())) if stats is not None else ""


def mark(st: ScoringJobStatus, now: datetime) -> str | None:
    """On a succeeded run: the DriftExceeded condition (True with the columns, or False); the message of the Warning
    event to post, if any."""
    over = exceeded(st.result)
    if not over:
        if st.result is not None and st.result.statistics is not None and st.result.statistics.drift:
            st.conditions = set_condition(st.conditions, CONDITION, False, "WithinThreshold",
                                          "the predictions' drift is within the threshold", now)
        return None
    message = f"prediction drift beyond the threshold: {over}"
    st.conditions = set_condition(st.conditions, CONDITION, True, CONDITION, message, now)
    return message
