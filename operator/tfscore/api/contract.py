"""The runtime ↔ operator contract: where the operator hands a run its spec, and how the driver reports back.

Both sides import these names; neither spells a path, key or wire form of its own. The operator mounts the
(immutable, per-attempt) ConfigMap `<job>-spec-<attempt>` at SPEC_MOUNT (keys SPEC_KEY, PROPERTIES_KEY,
EXECUTOR_TEMPLATE_KEY); the driver patches its own pod's PROGRESS_ANNOTATION with a `Progress` in wire form every
few seconds, and on exit writes TERMINATION_LOG: a `Result` in wire form on success, one line of cause on failure.
The runtime imports nothing from Kubernetes libraries.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tfscore.api.common import GROUP, StatusModel
from tfscore.api.statistics import PredictionStatistics

PROGRESS_ANNOTATION = f"{GROUP}/progress"
TERMINATION_LOG = "/dev/termination-log"
SPEC_MOUNT = "/etc/tfscore"
SPEC_KEY = "job.json"
PROPERTIES_KEY = "spark.properties"
EXECUTOR_TEMPLATE_KEY = "executor-pod-template.yaml"
SPEC_FILE = f"{SPEC_MOUNT}/{SPEC_KEY}"
SPARK_PROPERTIES_FILE = f"{SPEC_MOUNT}/{PROPERTIES_KEY}"
EXECUTOR_TEMPLATE_FILE = f"{SPEC_MOUNT}/{EXECUTOR_TEMPLATE_KEY}"
MAX_TERMINATION_MESSAGE = 4000  # the kubelet keeps at most 4096 bytes of a termination message


class ModelStatus(StatusModel):
    """The model a run actually scored with."""

    name: Annotated[str | None, Field(description="Its name, when the job scores several models.")] = None
    uri: Annotated[str | None, Field(description="The model URI as given in the spec.")] = None
    version: Annotated[str | None, Field(description="The version resolved at start (for 'latest').")] = None
    fingerprint: Annotated[str | None, Field(description="SavedModel fingerprint, checked on every executor.")] = None
    signature: Annotated[str | None, Field(description="The signature called.")] = None


class Progress(StatusModel):
    """How far the running attempt is (the driver pod's progress annotation)."""

    rows_scored: Annotated[int, Field(description="Rows read and scored so far.")] = 0
    tasks_done: Annotated[int, Field(description="Spark tasks finished.")] = 0
    tasks_total: Annotated[int, Field(description="Spark tasks in the scoring stage.")] = 0
    percent: Annotated[int, Field(description="tasksDone / tasksTotal, 0-100.")] = 0

    @classmethod
    def of(cls, rows_scored: int, tasks_done: int, tasks_total: int) -> Progress:
        percent = int(100 * tasks_done / tasks_total) if tasks_total else 0
        return cls(rows_scored=rows_scored, tasks_done=tasks_done, tasks_total=tasks_total,
                   percent=max(0, min(100, percent)))


class IncrementalResult(StatusModel):
    """What an incremental run covered."""

    partition_key: Annotated[str, Field(description="The partition column.")]
    partitions: Annotated[list[str], Field(description="The partition values scored, in order.")] = []
    watermark: Annotated[str | None, Field(description="The highest value scored (the schedule's next `after`); "
                                                       "the run's `after` when nothing new was there.")] = None


class Timeline(StatusModel):
    """Seconds from the driver process's start to each phase of the run: where the time a user waits for goes."""

    started_at: Annotated[str | None, Field(description="When the driver process started (RFC 3339, UTC): the origin "
                                                        "of every figure below.")] = None
    jvm_ready: Annotated[float | None, Field(description="Spark's JVM and session are up.")] = None
    model_resolved: Annotated[float | None, Field(description="Every model's version resolved and its signature "
                                                              "read.")] = None
    executors_registered: Annotated[float | None, Field(description="Every executor Spark asked for registered (a "
                                                                    "cluster run), or every local worker started, "
                                                                    "TensorFlow imported (the local engine).")] = None
    executors_checked: Annotated[float | None, Field(description="Every executor answered the image check, its Python "
                                                                 "workers' TensorFlow imported (a cluster run).")] = None
    first_task: Annotated[float | None, Field(description="The first scoring task started on an executor.")] = None
    first_batch: Annotated[float | None, Field(description="The first batch was scored.")] = None
    last_batch: Annotated[float | None, Field(description="The last task finished scoring.")] = None
    scored: Annotated[float | None, Field(description="Every task done, the output staged.")] = None
    verified: Annotated[float | None, Field(description="Rows counted from the written files.")] = None
    committed: Annotated[float | None, Field(description="The output committed (absent from the committed "
                                                         "_tfscore.json, which is written just before).")] = None


class Result(StatusModel):
    """What a finished run reports (the driver's termination message; `tfscore run` prints it)."""

    rows_in: Annotated[int, Field(description="Rows read from the input.")]
    rows_out: Annotated[int, Field(description="Rows written to the output (counted from the written files).")]
    rows_quarantined: Annotated[int, Field(description="Invalid rows written to quarantineUri.")] = 0
    seconds: Annotated[float, Field(description="Wall time of the run.")]
    rows_per_second: Annotated[float, Field(description="rowsIn / seconds.")]
    output_uri: Annotated[str, Field(description="Where the output was committed.")]
    quarantine_uri: Annotated[str | None, Field(description="Where quarantined rows were committed.")] = None
    model: Annotated[ModelStatus | None, Field(description="The model scored with (the first, with several).")] = None
    models: Annotated[list[ModelStatus], Field(description="Every model scored with, when the job scores "
                                                           "several.")] = []
    statistics: Annotated[PredictionStatistics | None, Field(description="The predictions' statistics (and drift).")] \
        = None
    incremental: Annotated[IncrementalResult | None, Field(description="The partitions an incremental run scored.")] \
        = None
    timeline: Annotated[Timeline | None, Field(description="When each phase of the run happened.")] = None


class Failure(StatusModel):
    """A failed run's termination message (JSON; an older or crashed driver may leave one plain line instead)."""

    reason: Annotated[str, Field(description="One CamelCase word: RunFailed, DriftExceeded, Terminated, …")]
    message: Annotated[str, Field(description="The cause, one sentence.")]
