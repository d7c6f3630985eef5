"""Prometheus metrics of the operator (prometheus_client), on their own registry so tests can make many."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from tfscore.api.scoringjob import Phase

PHASES = [p.value for p in Phase]


class _PhaseCollector:
    """tfscore_jobs{phase}: counted from the operator's cache at scrape time (never drifts from it)."""

    def __init__(self, phases: Callable[[], Mapping[str, int]]) -> None:
        self._phases = phases

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("tfscore_jobs", "ScoringJobs by phase.", labels=["phase"])
        counts = self._phases()
        for phase in [*PHASES, "Unknown"]:
            family.add_metric([phase], counts.get(phase, 0))
        yield family


class Metrics:
    def __init__(self, phases: Callable[[], Mapping[str, int]] = dict,
                 registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.started = Counter("tfscore_jobs_started", "ScoringJobs whose first driver pod was created.", registry=r)
        self.succeeded = Counter("tfscore_jobs_succeeded", "ScoringJobs that succeeded.", registry=r)
        self.failed = Counter("tfscore_jobs_failed", "ScoringJobs that failed.", ["reason"], registry=r)
        self.attempts_failed = Counter("tfscore_attempts_failed", "Failed driver attempts (retried or not).",
                                       registry=r)
        self.duration = Histogram("tfscore_job_duration_seconds", "Start to finish of finished ScoringJobs.",
                                  buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400),
                                  registry=r)
        self.rows = Counter("tfscore_rows_scored", "Rows scored by succeeded ScoringJobs.", registry=r)
        self.admission = Histogram("tfscore_admission_latency_seconds",
                                   "ScoringJob creationTimestamp to its first driver pod created.",
                                   buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300), registry=r)
        self.reconciles = Counter("tfscore_reconciles", "Reconciles by outcome.", ["outcome"], registry=r)
        # Kueue (label kueue.x-k8s.io/queue-name): the wait for admission and what the queue did.
        self.queue_wait = Histogram("tfscore_queue_wait_seconds", "Time a ScoringJob spent Queued until Kueue admitted "
                                    "it (each admission, also after an eviction).",
                                    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
                                    registry=r)
        self.admissions = Counter("tfscore_queue_admissions", "Kueue admissions that started an attempt.", registry=r)
        self.evictions = Counter("tfscore_queue_evictions", "Running attempts stopped because Kueue evicted their "
                                 "Workload (not counted as failures).", ["reason"], registry=r)
        r.register(_PhaseCollector(phases))

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, registry=self.registry)
