"""The schedules' Prometheus metrics, on the operator's registry (operator/metrics.py): runs started, succeeded, failed
and skipped per schedule, how late each start was, and the latest drift figure per prediction column."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SCHEDULE = ["namespace", "schedule"]


class ScheduleMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = self.registry = registry
        self.started = Counter("tfscore_schedule_runs_started", "Runs a ScoringSchedule created.", SCHEDULE,
                               registry=r)
        self.succeeded = Counter("tfscore_schedule_runs_succeeded", "Runs of a ScoringSchedule that succeeded.",
                                 SCHEDULE, registry=r)
        self.failed = Counter("tfscore_schedule_runs_failed", "Runs of a ScoringSchedule that failed.",
                              [*SCHEDULE, "reason"], registry=r)
        self.skipped = Counter("tfscore_schedule_runs_skipped", "Scheduled times not started: Forbid (a run was "
                               "active), Missed (operator down, suspended, past startingDeadlineSeconds), "
                               "RenderFailed.", [*SCHEDULE, "reason"], registry=r)
        self.lateness = Histogram("tfscore_schedule_start_lateness_seconds", "Scheduled time to the run's ScoringJob "
                                  "created, by the API server's clock.",
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600), registry=r)
        self.drift = Gauge("tfscore_schedule_drift", "The latest finished run's drift per prediction column (PSI or "
                           "KS, see the metric label).", [*SCHEDULE, "column", "metric"], registry=r)

    def set_drift(self, namespace: str, schedule: str, column: str, metric: str, value: float) -> None:
        self.drift.labels(namespace, schedule, column, metric).set(value)

    def forget(self, namespace: str, schedule: str) -> None:
        """A deleted schedule's series go with it (they would otherwise be exported forever)."""
        for metric in (self.started, self.succeeded, self.failed, self.skipped, self.drift):
            metric.remove_by_labels({"namespace": namespace, "schedule": schedule})
