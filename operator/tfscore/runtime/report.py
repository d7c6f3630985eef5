"""What a task tells the driver: one frozen `TaskReport` per partition, carried by a Spark accumulator.

A retried or recomputed task replaces its partition's report instead of adding to it, so the counts stay exact under
retries, and the driver knows exactly which attempt's file Spark counted. A data error is a report too (error, kind): bad
data fails the same way on every attempt, so the task ends successfully with the error and the driver reports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tfscore.api.contract import Timeline


@dataclass(frozen=True)
class TaskReport:
    partition: int
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    output_file: str | None = None  # the Arrow writer's file of the counted attempt
    quarantine_file: str | None = None
    started_at: float | None = None
    first_batch_at: float | None = None
    ended_at: float | None = None
    peak_rss_mb: float = 0.0
    error: str | None = None  # a data error's one sentence
    error_kind: str | None = None  # the TfscoreError subclass name
    statistics: dict[str, Any] = field(default_factory=dict)  # batchstats.BatchStats.to_wire() of the task's output


class ReportAccumulator:
    """AccumulatorParam of {partition: TaskReport}: the latest report of a partition wins."""

    def zero(self, value: Mapping[int, TaskReport]) -> dict[int, TaskReport]:
        return {}

    def addInPlace(self, a: dict[int, TaskReport], b: Mapping[int, TaskReport]) -> dict[int, TaskReport]:  # noqa: N802
        a.update(b)
        return a


@dataclass(frozen=True)
class Totals:
    """The driver's view over every partition's report."""

    rows_in: int
    rows_out: int
    rows_quarantined: int
    output_files: tuple[str, ...]
    quarantine_files: tuple[str, ...]
    first_error: TaskReport | None

    @classmethod
    def of(cls, reports: Mapping[int, TaskReport]) -> Totals:
        ordered = [reports[p] for p in sorted(reports)]
        return cls(
            rows_in=sum(r.rows_in for r in ordered),
            rows_out=sum(r.rows_out for r in ordered),
            rows_quarantined=sum(r.rows_quarantined for r in ordered),
            output_files=tuple(r.output_file for r in ordered if r.output_file),
            quarantine_files=tuple(r.quarantine_file for r in ordered if r.quarantine_file),
            first_error=next((r for r in ordered if r.error), None),
        )


def timings(reports: Iterable[TaskReport]) -> dict[str, Any]:
    """Task time vs wall time tells whether the executors were busy (taskSeconds ≈ cores × scoringSeconds)."""
    reports = list(reports)
    firsts = [r.first_batch_at for r in reports if r.first_batch_at]
    spans = [(r.started_at, r.ended_at) for r in reports if r.started_at and r.ended_at]
    return {
        "tasks": len(reports),
        "firstBatchAt": min(firsts) if firsts else None,
        "lastBatchAt": max((e for _, e in spans), default=None),
        "scoringSeconds": round(max(e for _, e in spans) - min(s for s, _ in spans), 3) if spans else 0.0,
        "taskSeconds": round(sum(e - s for s, e in spans), 3),
        "workerPeakRssMb": max((r.peak_rss_mb for r in reports), default=0),
    }


def process_started_at() -> float | None:
    """When this process started (epoch seconds, ~10 ms), from /proc/self/stat's start time in clock ticks since boot:
    the driver's timeline counts from there, so a user's wait for imports and the JVM is in it."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of proc(5); fields[0] is field 3
        return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot)
    except (OSError, ValueError, IndexError, AttributeError):
        return None  # not Linux: the timeline counts from the run's start instead


def timeline(origin: float, marks: dict[str, float], reports: Iterable[TaskReport]) -> Timeline:
    """The run's phases in seconds after `origin` (the process start), from the driver's marks and the tasks' reports."""
    reports = list(reports)
    starts = [r.started_at for r in reports if r.started_at]
    firsts = [r.first_batch_at for r in reports if r.first_batch_at]
    ends = [r.ended_at for r in reports if r.ended_at]

    def at(t: float | None) -> float | None:
        return None if t is None else round(t - origin, 3)

    return Timeline(started_at=datetime.fromtimestamp(origin, UTC).isoformat(timespec="milliseconds"),
                    jvm_ready=at(marks.get("sparkReady")), model_resolved=at(marks.get("modelResolved")),
                    executors_registered=at(marks.get("executorsRegistered")),
                    executors_checked=at(marks.get("executorsChecked")),
                    first_task=at(min(starts, default=None)), first_batch=at(min(firsts, default=None)),
                    last_batch=at(max(ends, default=None)), scored=at(marks.get("scored")),
                    verified=at(marks.get("verified")), committed=at(marks.get("committed")))
