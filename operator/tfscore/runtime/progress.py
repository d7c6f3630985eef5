"""Progress while the job runs: a console bar (tasks and rows) and, inside a driver pod, the `tfscore.io/progress`
annotation the operator turns into the ScoringJob's status.

The pod annotation is one JSON merge-patch over HTTPS with the pod's own service-account token: plain urllib, no Kubernetes
library (the runtime imports nothing from Kubernetes).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

from tfscore.api.contract import PROGRESS_ANNOTATION, Progress

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass
class Snapshot:
    rows_scored: int = 0
    tasks_done: int = 0
    tasks_total: int = 0

    @property
    def percent(self) -> int:
        return Progress.of(self.rows_scored, self.tasks_done, self.tasks_total).percent

    def wire(self) -> dict[str, int]:
        """The annotation's value: a `Progress` in wire form (the operator reads it with the same model)."""
        return Progress.of(self.rows_scored, self.tasks_done, self.tasks_total).to_wire()


class PodAnnotationSink:
    """PATCHes the driver pod's progress annotation (at most every `interval` seconds; failures only logged)."""

    def __init__(self, interval: float = 2.0):
        self.pod = os.environ["POD_NAME"]
        self.namespace = os.environ.get("POD_NAMESPACE") or open(f"{SA_DIR}/namespace").read().strip()
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        self.url = f"https://{host}:{port}/api/v1/namespaces/{self.namespace}/pods/{self.pod}"
        self.ctx = ssl.create_default_context(cafile=f"{SA_DIR}/ca.crt")
        self.interval = interval
        self.last = 0.0
        self.warned = False

    @classmethod
    def from_env(cls) -> PodAnnotationSink | None:
        if os.environ.get("POD_NAME") and os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(
                f"{SA_DIR}/token"):
            return cls()
        return None

    def __call__(self, snap: Snapshot, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        body = json.dumps({"metadata": {"annotations": {PROGRESS_ANNOTATION: json.dumps(snap.wire())}}}).encode()
        token = open(f"{SA_DIR}/token").read().strip()
        req = urllib.request.Request(self.url, data=body, method="PATCH", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"})
        try:
            urllib.request.urlopen(req, context=self.ctx, timeout=5).close()
        except Exception as exc:  # noqa: BLE001 - progress must never fail the job
            if not self.warned:
                print(f"tfscore: cannot update pod annotation {PROGRESS_ANNOTATION}: {exc}", file=sys.stderr)
                self.warned = True


class LogSink:
    """A progress line on stderr every `interval` seconds, for logs (pods, CI) where a live bar cannot draw."""

    def __init__(self, interval: float = 10.0):
        self.interval = interval
        self.last = time.monotonic()

    def __call__(self, snap: Snapshot, final: bool = False) -> None:
        now = time.monotonic()
        if final or now - self.last < self.interval:
            return
        self.last = now
        print(f"tfscore: {snap.tasks_done}/{snap.tasks_total} tasks, {snap.rows_scored:,} rows scored "
              f"({snap.percent}%)", file=sys.stderr, flush=True)


class SparkTracker:
    """Tasks from Spark's status tracker (the job group's stages), rows from the task reports' accumulator."""

    def __init__(self, sc, group: str, counts):
        self.sc, self.group, self.counts = sc, group, counts

    def tasks(self) -> tuple[int, int]:
        tracker = self.sc.statusTracker()
        done = total = 0
        for job_id in tracker.getJobIdsForGroup(self.group):
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            for stage_id in job.stageIds:
                stage = tracker.getStageInfo(stage_id)
                if stage is not None:
                    done += stage.numCompletedTasks
                    total += stage.numTasks
        return done, total

    def reports(self) -> dict:
        return dict(self.counts.value)

    def cancel(self) -> None:
        self.sc.cancelJobGroup(self.group)


class ProgressMonitor:
    """Polls the engine's tracker (tasks done and in all, the task reports so far) from a background thread."""

    def __init__(self, tracker, total_rows: int | None, show_bar: bool, sinks=(), interval=0.5):
        self.tracker = tracker
        self.total_rows = total_rows
        self.sinks = [s for s in sinks if s is not None]
        self.interval = interval
        self.snapshot = Snapshot()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tfscore-progress", daemon=True)
        self._bar = None
        if show_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("[bold]scoring"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("tasks · {task.fields[rows]} rows"), TimeElapsedColumn(),
                                 transient=False, console=None)
            self._bar_task = None

    def poll(self) -> Snapshot:
        done, total = self.tracker.tasks()
        try:
            parts = self.tracker.reports()
            rows = sum(r.rows_in for r in parts.values())
            if any(r.error for r in parts.values()):
                self.tracker.cancel()  # bad data fails every attempt alike: stop the other tasks now
        except Exception:  # noqa: BLE001 - the accumulator may be mid-update
            rows = self.snapshot.rows_scored
        self.snapshot = Snapshot(rows, done, max(total, done))
        return self.snapshot

    def _emit(self, final: bool = False) -> None:
        snap = self.snapshot
        if self._bar is not None:
            if self._bar_task is None:
                self._bar_task = self._bar.add_task("score", total=max(snap.tasks_total, 1), rows=0)
            self._bar.update(self._bar_task, completed=snap.tasks_done, total=max(snap.tasks_total, 1),
                             rows=f"{snap.rows_scored:,}")
        for sink in self.sinks:
            sink(snap, final)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
                self._emit()
            except Exception:  # noqa: BLE001 - never let progress reporting kill the job
                pass

    def __enter__(self) -> ProgressMonitor:
        if self._bar is not None:
            self._bar.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.poll()
            self._emit(final=True)
        finally:
            if self._bar is not None:
                self._bar.stop()
