"""Pure mapping: a run (a ScoringJob owned by a ScoringSchedule, as the API server reports it) → what the schedule needs
to know about it (RunView), and a RunView → its bounded record in the schedule's status. No clock, no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tfscore.api.contract import Result
from tfscore.api.schedule_run import ANNOTATION_SCHEDULED_TIME
from tfscore.api.scoringschedule import MAX_SUMMARY_COLUMNS, ColumnSummary, DriftSummary, RunRecord
from tfscore.operator.objects import owned_by, parse_time
from tfscore.operator.scoringjob import drift

FINISHED = ("Succeeded", "Failed")
GONE = ("Replaced", "Deleted")  # record phases of runs whose ScoringJob went away unfinished
MAX_PARTITIONS = 20


@dataclasses.dataclass(frozen=True)
class RunView:
    name: str
    scheduled_time: datetime
    phase: str = "Pending"
    deleting: bool = False
    completion_time: datetime | None = None
    reason: str | None = None
    message: str | None = None
    result: Result | None = None

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    @property
    def active(self) -> bool:
        return not self.finished and not self.deleting


def observe_run(body: Mapping[str, Any], schedule_uid: str | None = None) -> RunView | None:
    """The run's view, or None when it is not one of this schedule's runs (no owner reference to `schedule_uid`, no
    scheduled-time annotation)."""
    meta = body.get("metadata") or {}
    if schedule_uid is not None and not owned_by(body, schedule_uid):
        return None
    scheduled = parse_time((meta.get("annotations") or {}).get(ANNOTATION_SCHEDULED_TIME))
    if scheduled is None:
        return None
    status = body.get("status") or {}
    phase = status.get("phase") or "Pending"
    result = None
    if status.get("result"):
        try:
            result = Result.model_validate(status["result"])
        except ValidationError:
            result = None
    reason = None
    if phase == "Failed":
        failed = next((c for c in status.get("conditions") or [] if c.get("type") == "Failed"), {})
        reason = failed.get("reason") or "Failed"
    return RunView(name=meta["name"], scheduled_time=scheduled, phase=phase,
                   deleting=bool(meta.get("deletionTimestamp")), completion_time=parse_time(status.get("completionTime")),
                   reason=reason, message=status.get("message"), result=result)


def record(run: RunView) -> RunRecord:
    """The run's entry in status.recentRuns: phase, rows, output, partitions, and the statistics and drift in brief."""
    rec = RunRecord(name=run.name, scheduled_time=run.scheduled_time, phase=run.phase, reason=run.reason,
                    completion_time=run.completion_time)
    res = run.result
    if res is None or not run.finished:
        return rec
    rec.rows, rec.output_uri = res.rows_out, res.output_uri
    if res.incremental is not None:
        rec.partitions = res.incremental.partitions[:MAX_PARTITIONS]
        rec.watermark = res.incremental.watermark
    stats = res.statistics
    if stats is not None:
        rec.statistics = {col: ColumnSummary(count=c.count, nulls=c.nulls, nans=c.nans, mean=c.mean, stddev=c.stddev,
                                             p50=c.quantiles.get("p50"))
                          for col, c in sorted(stats.columns.items())[:MAX_SUMMARY_COLUMNS]} or None
        rec.drift = {col: DriftSummary(metric=d.metric, value=d.value, threshold=d.threshold, exceeded=d.exceeded)
                     for col, d in sorted(stats.drift.items())[:MAX_SUMMARY_COLUMNS]} or None
    return rec


def drift_exceeded(rec: RunRecord) -> bool:
    return rec.reason == "DriftExceeded" or any(d.exceeded for d in (rec.drift or {}).values())


def describe_drift(rec: RunRecord) -> str:
    """One sentence on a record's drift beyond the threshold."""
    over = drift.describe(sorted((rec.drift or {}).items()))
    if over:
        return f"run {rec.name}: prediction drift beyond the threshold: {over}"
    return f"run {rec.name} failed: prediction drift beyond the threshold (see the run's status)"
