"""Who runs a job's tasks: Spark, or — for a local run from plain Parquet files to plain Parquet files — the local
engine (local_engine.py), with no JVM.

`choose` is the one place that decides. `SparkEngine` wraps a session in the small interface `LocalEngine` has (conf,
check, new_counts, reports, marks, score, stop, close), so the job (job.py) reads the same whichever runs it. The cluster path is
always Spark.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tfscore.api.scoringjob import ScoringJob, model_entries
from tfscore.runtime import ensemble, model, source, splits, storage
from tfscore.runtime.doctor import executors
from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.local_engine import LocalEngine, local_slots
from tfscore.runtime.model import ResolvedModel, resolve
from tfscore.runtime.progress import SparkTracker
from tfscore.runtime.report import ReportAccumulator, TaskReport
from tfscore.runtime.session import build_session, is_local_master, resolve_master
from tfscore.runtime.sink import wants_arrow_writer

ENGINES = ("auto", "local", "spark")
GROUP = "tfscore-score"
CHECK_GROUP = "tfscore-check"
CHECK_SUBMIT_WAIT = 20.0  # seconds the planning waits at most for the check's job to be submitted


def why_spark(job: ScoringJob, master: str, handed: bool) -> str | None:
    """Why this run needs Spark; None when the local engine runs it with the same result."""
    spec = job.spec
    if handed:  # the caller's session: its temporary views may be the input, its conf is the caller's to keep
        return "it was handed a SparkSession"
    if local_slots(master) is None:  # the cluster path stays Spark: executors, retries across nodes, the UI
        return f"the master is {master}, not local"
    if not source.wants_arrow_reader(job):  # formats, where, options and tables are Spark's readers
        return "its input needs Spark's reader (not plain Parquet, or input.where, input.options or input.table)"
    if not wants_arrow_writer(job):  # formats, partitionBy and options are Spark's writers
        return "its output needs Spark's writer (output.format, output.partitionBy or output.options)"
    if spec.input.incremental is not None:  # partition values are typed by Spark's inference (source.partition_schema)
        return "input.incremental selects partitions, whose column types Spark infers"
    try:
        _, root, files = storage.list_data_files(spec.input.uri)
    except Exception:  # noqa: BLE001 - the reader names a missing or unreadable input, on either engine
        return None
    if splits.has_partitions(root, files):  # as above: both readers must type partition columns as Spark does
        return "input.uri has partition directories, whose column types Spark infers"
    return None


def choose(job: ScoringJob, engine: str, master: str, handed: bool) -> str:
    """`auto`: the local engine wherever it can run the job, else Spark; `local` refuses a job it cannot run."""
    if engine not in ENGINES:
        raise TfscoreError(f"--engine: {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "spark":
        return "spark"
    reason = why_spark(job, master, handed)
    if reason is None:
        return "local"
    if engine == "local":
        raise TfscoreError(f"--engine local: this run needs Spark: {reason}; use --engine auto or spark")
    return "spark"


def resolve_models(job: ScoringJob) -> list[ResolvedModel]:
    models = []
    for entry in model_entries(job.spec):
        with ensemble.naming(entry), storage.storage_errors("model.uri", entry.spec.uri):
            models.append(resolve(entry.spec))
    return models


def start(job: ScoringJob, engine: str, master: str | None, properties: dict[str, str], spark: Any,
          marks: dict[str, float]) -> tuple[Any, list[ResolvedModel]]:
    """The engine starts (the JVM, or the local workers importing TensorFlow) while the models are resolved here."""
    spec = job.spec
    resolved_master = resolve_master(master, properties)
    if choose(job, engine, resolved_master, spark is not None) == "local":
        local = LocalEngine(resolved_master, {**properties, **spec.spark_conf})
        try:
            models = resolve_models(job)
        except BaseException:
            local.stop()
            raise
        marks["modelResolved"] = time.time()
        return local, models
    with ThreadPoolExecutor(max_workers=2) as pool:
        spark_future = None if spark is not None else pool.submit(build_session, spec, master, properties)
        # The driver's image manifest (package metadata, `java -version`), which the executors are checked against,
        # is read while the JVM starts, not after it: on a cluster the driver has one core and the executors wait.
        manifest = pool.submit(executors.driver_manifest) if executors.executor_check_wanted(resolved_master) else None
        try:
            models = resolve_models(job)
            marks["modelResolved"] = time.time()
        except BaseException:
            if spark_future is not None:
                spark_future.cancel()
            raise
        session = spark if spark is not None else spark_future.result()
    marks["sparkReady"] = time.time()
    return SparkEngine(session, manifest), models


class SparkEngine:
    """Spark schedules, retries and counts the tasks; the reports travel in an accumulator."""

    kind = "spark"

    def __init__(self, spark, manifest: Future | None = None):
        self.spark = spark
        self.sc = spark.sparkContext
        self.parallelism = self.sc.defaultParallelism
        self._manifest = manifest  # the driver's, read while the JVM started (start)
        self._checked: Future | None = None  # the executors' check, running beside the driver's planning (check)
        self._checked_at: float | None = None  # when it passed

    def marks(self) -> dict[str, float]:
        """The timeline's executorsChecked (when the executors' check passed) and executorsRegistered: when the last
        of the executors asked for registered, from Spark's status store (each executor's add time); none on a local
        master."""
        checked = {"executorsChecked": self._checked_at} if self._checked_at is not None else {}
        wanted = executors_wanted(self.sc.master, self.conf("spark.executor.instances"))
        if not wanted:
            return checked
        try:
            added = sorted(e.addTime().getTime() / 1000 for e in executors.registered_executors(self.sc, live_only=False))
        except Exception:  # noqa: BLE001 - a figure of the timeline, never a failure of the run
            return checked
        return {**checked, **({"executorsRegistered": added[wanted - 1]} if len(added) >= wanted else {})}

    def conf(self, key: str) -> str | None:
        return self.spark.conf.get(key, None)

    def describe(self) -> dict[str, Any]:
        """For the run's manifest: what the executors' check saw (executors, Python workers, warm ones)."""
        if self._checked is None or not self._checked.done() or self._checked.exception() is not None:
            return {}
        return {"executorCheck": self._checked.result()}

    def check(self, job: ScoringJob) -> None:
        """One image everywhere, or fail before committing, naming the executor. The executors' check runs beside the
        driver's planning (open the source, bind the models) and its tasks import TensorFlow in the Python workers the
        scoring tasks then reuse (on the image's executors they come warm: tfscore.runtime.prewarm), so on a cluster
        the executors' work overlaps the driver's; `score` holds the run to its verdict.

        The driver's planning waits, though, until the check's job is submitted: on a cluster the driver has one core,
        and the check is what the executors wait for (planning its first DataFrame on a cold JVM took ~3 s, shared
        with the planning below), while the scoring tasks queue behind the check's anyway."""
        _table_location(self.spark, job)
        if executors.executor_check_wanted(self.sc.master):
            expected = self._manifest.result() if self._manifest is not None else executors.driver_manifest()
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfscore-check")
            self._checked = pool.submit(self._check, expected)
            pool.shutdown(wait=False)
            tracker, deadline = self.sc.statusTracker(), time.monotonic() + CHECK_SUBMIT_WAIT
            while not self._checked.done() and not tracker.getJobIdsForGroup(CHECK_GROUP) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)

    def _check_passed(self) -> None:
        """Raises the executors' check's failure (waiting for its verdict); nothing when it passed or did not run."""
        if self._checked is not None:
            self._checked.result()

    def _check(self, expected) -> dict[str, int]:
        self.sc.setJobGroup(CHECK_GROUP, "tfscore: the executors' image check")  # this thread's jobs (pinned threads)
        try:
            seen = executors.check_executors(self.spark, expected, model.import_tensorflow)
        finally:
            self.sc.setLocalProperty("spark.jobGroup.id", None)
        self._checked_at = time.time()
        return seen

    def new_counts(self):
        return self.sc.accumulator({}, ReportAccumulator())

    def reports(self, counts) -> dict[int, TaskReport]:
        return dict(counts.value)

    def score(self, src, sink, task, output_struct, job: ScoringJob, monitor) -> dict[int, TaskReport]:
        """The scoring job is submitted while the executors' check may still run: Spark hands each slot the check's
        task first (its job came first), so a slot's scoring task starts the moment its check task ends, in the worker
        the check warmed. A mismatched image cancels the scoring job and fails the run with the check's sentence,
        before anything is committed (the tasks write into the staging, which the failed run discards)."""
        self.sc.setJobGroup(GROUP, f"tfscore {job.metadata.name}", interruptOnCancel=True)
        if self._checked is not None:
            self._checked.add_done_callback(lambda f: f.exception() is None or self.sc.cancelJobGroup(GROUP))
        try:
            scored = src.scored(self.spark, task, output_struct)
            with monitor(SparkTracker(self.sc, GROUP, task.counts)):
                sink.write(scored, job)
        except BaseException:
            self._check_passed()  # the check's sentence explains a cancelled (or crashed) scoring job
            raise
        finally:
            self.sc.setLocalProperty("spark.jobGroup.id", None)
        self._check_passed()  # a scoring job faster than the check's verdict still fails on a mismatch
        return dict(task.counts.value)

    def stop(self, timeout: float = 15.0) -> None:
        """Cancel the scoring job and wait (bounded) until none of its tasks is active any more, so nothing writes into
        the staging after it is discarded."""
        try:
            self.sc.cancelJobGroup(GROUP)
            tracker = self.sc.statusTracker()

            def active() -> int:
                stages = [s for j in tracker.getJobIdsForGroup(GROUP) if (info := tracker.getJobInfo(j)) is not None
                          for s in info.stageIds]
                return sum(info.numActiveTasks for s in stages if (info := tracker.getStageInfo(s)) is not None)

            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and active():
                time.sleep(0.2)
        except Exception:  # noqa: BLE001 - best effort: the process is going away anyway
            pass

    def close(self) -> None:
        """The session outlives the run (a notebook's, or this process's until it exits)."""


def executors_wanted(master: str, instances: str | None) -> int | None:
    """How many executors a run waits for: spark.executor.instances on a cluster master; none on a local one, whose
    only executor is the driver."""
    if is_local_master(master) or not instances:
        return None
    try:
        return max(0, int(instances)) or None
    except ValueError:
        return None


def _table_location(spark, job: ScoringJob) -> None:
    """A catalog table's files are an input location too."""
    table = job.spec.input.table
    if not table:
        return
    try:
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    except Exception:  # noqa: BLE001 - an unknown table is reported by the reader, naming it
        return
    where = next((r[1] for r in rows if (r[0] or "").strip() == "Location"), None)
    if where and storage.location(where).overlaps(storage.location(job.spec.output.uri)):
        raise TfscoreError(f"output.uri: {job.spec.output.uri} overlaps the location {where} of input.table {table}")
