"""Run one ScoringJob on Spark: check everything that can be checked before touching data, score, verify, commit.

Order of work (each failure names the field, column or file, and leaves no output behind):
1. model: resolve the version, read the signature, fingerprint — while the Spark JVM starts in parallel;
2. output: refuse an existing output under errorIfExists, an output inside the input, …;
3. input: plan (Parquet footers for the Arrow reader, or Spark's reader), bind columns to the signature;
4. score into a staging directory (Spark's commit protocol: retried tasks write once);
5. count the rows in the written files: rows in must equal rows out + rows quarantined;
6. commit (rename into place per mode), write the `_tfscore.json` run manifest, return the result.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tfscore import __version__
from tfscore.api.contract import Result
from tfscore.api.scoringjob import ScoringJob
from tfscore.runtime import io
from tfscore.runtime.binding import Binding, bind
from tfscore.runtime.doctor import executors
from tfscore.runtime.errors import InvalidRowError, Terminated, TfscoreError, unwrap
from tfscore.runtime.model import ResolvedModel, resolve
from tfscore.runtime.progress import LogSink, PodAnnotationSink, ProgressMonitor
from tfscore.runtime.scorer import DictAccumulator, FaultInjection, Task, map_spark_batches, map_splits
from tfscore.runtime.session import applied_environment, build_session, resolve_master

GROUP = "tfscore-score"


@dataclass
class RunOptions:
    master: str | None = None
    properties: dict[str, str] | None = None
    show_progress: bool = False
    spark: Any = None  # an existing SparkSession (tests, notebooks)


def _reader(job: ScoringJob) -> str:
    inp = job.spec.input
    if inp.reader != "auto":
        return inp.reader
    if inp.uri and inp.resolved_format == "parquet" and not inp.where and not inp.options:
        return "arrow"
    return "spark"


ARROW_COMPRESSION = {"snappy", "zstd", "gzip", "lz4", "brotli", "none", "uncompressed"}


def _writer(job: ScoringJob) -> str:
    out = job.spec.output
    if out.writer != "auto":
        return out.writer
    if out.format == "parquet" and not out.partition_by and set(out.options) <= {"compression"} \
            and out.options.get("compression", "snappy").lower() in ARROW_COMPRESSION:
        return "arrow"
    return "spark"


def _check_output(job: ScoringJob) -> None:
    spec = job.spec
    out = spec.output
    fs, path = io.fs_and_path(out.uri, "output.uri")
    with io.storage_errors("output.uri", out.uri):
        if out.mode == "errorIfExists" and io.exists_nonempty(fs, path):
            raise TfscoreError(f"output.uri: {out.uri} already exists (mode errorIfExists); choose a new uri, or set "
                               "output.mode to overwrite or append")
        if fs.exists(path) and fs.isfile(path):
            raise TfscoreError(f"output.uri: {out.uri} is a file, not a directory")
    if spec.input.uri and io.same_or_nested(io.fs_and_path(spec.input.uri, "input.uri")[1], path):
        raise TfscoreError(f"output.uri: {out.uri} overlaps input.uri {spec.input.uri}; writing there could destroy "
                           "the input")
    if spec.quarantine_uri:
        qfs, qpath = io.fs_and_path(spec.quarantine_uri, "quarantineUri")
        if io.same_or_nested(qpath, path):
            raise TfscoreError(f"quarantineUri: {spec.quarantine_uri} overlaps output.uri {out.uri}")
        with io.storage_errors("quarantineUri", spec.quarantine_uri):
            if out.mode == "errorIfExists" and io.exists_nonempty(qfs, qpath):
                raise TfscoreError(f"quarantineUri: {spec.quarantine_uri} already exists (output.mode errorIfExists)")
    for col in out.partition_by:
        if col not in out.passthrough and col not in out.predictions.values():
            raise TfscoreError(f"output.partitionBy: column {col!r} is not an output column (add it to "
                               "output.passthrough)")


def _spark_input(spark, job: ScoringJob):
    inp = job.spec.input
    fmt = inp.resolved_format
    try:
        if fmt == "table":
            df = spark.table(inp.table)
            source = f"table {inp.table}"
        else:
            fs, path = io.fs_and_path(inp.uri, "input.uri")
            if not fs.exists(path):
                raise TfscoreError(f"input.uri: {inp.uri} does not exist")
            df = spark.read.format(fmt).options(**inp.options).load(io.spark_uri(inp.uri))
            source = inp.uri
        if inp.where:
            df = df.where(inp.where)
        df.schema  # noqa: B018 - analysis errors (bad where, unreadable files) surface here, before any work
    except TfscoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - AnalysisException & friends
        where = f" where {inp.where!r}" if inp.where else ""
        raise TfscoreError(f"input: cannot read {inp.table or inp.uri} as {fmt}{where}: {_first_line(exc)}") from exc
    return df, source


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _arrow_schema(df):
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)


def run_job(job: ScoringJob, options: RunOptions | None = None) -> Result:
    opts = options or RunOptions()
    if opts.spark is not None:  # a running session: its JVM and workers have their environment already
        return _run_job(job, opts)
    with applied_environment(job.spec, resolve_master(opts.master, opts.properties or {})):
        return _run_job(job, opts)


def _run_job(job: ScoringJob, opts: RunOptions) -> Result:
    spec = job.spec
    started = time.time()
    owner = (job.metadata.model_extra or {}).get("uid")
    run_id = io.new_run_id(owner)
    out = spec.output

    if owner:
        for uri, field in ((out.uri, "output.uri"), (spec.quarantine_uri, "quarantineUri")):
            with io.storage_errors(field, uri):
                for line in io.recover(uri, owner, field) if uri else ():
                    print(f"tfscore: {line}", file=sys.stderr)
    _check_output(job)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The JVM starts while TensorFlow reads the model on this thread.
        spark_future = None
        if opts.spark is None:
            spark_future = pool.submit(build_session, spec, opts.master, opts.properties or {})
        try:
            with io.storage_errors("model.uri", spec.model.uri):
                model = resolve(spec.model)
        except BaseException:
            if spark_future is not None:
                spark_future.cancel()
            raise
        spark = opts.spark if opts.spark is not None else spark_future.result()
    sc = spark.sparkContext
    if executors.executor_check_wanted(sc.master):  # one image everywhere, or fail now naming the executor and images
        executors.check_executors(spark, executors.driver_manifest())
    parallelism = sc.defaultParallelism
    reader = _reader(job)
    writer_kind = _writer(job)

    counts = sc.accumulator({}, DictAccumulator())
    fault = FaultInjection.parse(spark.conf.get("spark.tfscore.faultInjection", None))
    out_staging = io.staging_uri(out.uri, run_id, "out")
    q_staging = io.staging_uri(spec.quarantine_uri, run_id, "q") if spec.quarantine_uri else None

    if reader == "arrow":
        needed = list(dict.fromkeys(list(out.passthrough) + _columns_named(spec, model)))
        split_rows = spark.conf.get("spark.tfscore.splitRows", None)
        with io.storage_errors("input.uri", spec.input.uri):
            plan = io.plan_parquet(spec.input.uri, needed, parallelism, min_rows=max(spec.batch_size, 65536),
                                   split_rows=int(split_rows) if split_rows else None)
        binding = bind(model.signature, plan.schema, spec.input.columns, out.passthrough, out.predictions,
                       spec.input.uri) if plan.files else _empty_binding(model, spec)
        task = _task(model, binding, spec, q_staging, spec.input.uri, counts, fault, run_id, writer_kind, out_staging,
                     splits=plan.splits)
        n = max(1, len(plan.splits))
        ids = spark.range(0, len(plan.splits), 1, numPartitions=n)
        scored = ids.mapInArrow(map_splits(task), _spark_schema(binding))
        expected_in: int | None = plan.rows
    else:
        df, source = _spark_input(spark, job)
        binding = bind(model.signature, _arrow_schema(df), spec.input.columns, out.passthrough, out.predictions,
                       source)
        task = _task(model, binding, spec, q_staging, source, counts, fault, run_id, writer_kind, out_staging)
        scored = df.select(*[_quote(c) for c in binding.read_columns]).mapInArrow(map_spark_batches(task),
                                                                                  _spark_schema(binding))
        expected_in = None

    if writer_kind == "arrow":
        # The workers write the files; Spark only schedules, retries and counts.
        writer = scored.write.format("noop").mode("overwrite")
        target = None
    else:
        writer = scored.write.format(out.format).options(**out.options).mode("errorIfExists")
        if out.partition_by:
            writer = writer.partitionBy(*out.partition_by)
        target = io.spark_uri(out_staging)
    sinks = [PodAnnotationSink.from_env(), None if opts.show_progress else LogSink()]
    sc.setJobGroup(GROUP, f"tfscore {job.metadata.name}", interruptOnCancel=True)
    sigterm = _SigtermGuard()
    try:
        try:
            with sigterm, ProgressMonitor(spark, GROUP, counts, expected_in, opts.show_progress, sinks):
                writer.save(target) if target else writer.save()
        except Exception:
            _raise_task_error(counts.value)  # a data error cancels the job: report it, not the cancellation
            raise
        per_part = counts.value
        _raise_task_error(per_part)
        if writer_kind == "arrow":
            io.promote(out_staging, [v["ofile"] for v in per_part.values() if v.get("ofile")], "output.uri",
                       empty_schema=binding.output_schema())
        if q_staging:
            io.promote(q_staging, [v["qfile"] for v in per_part.values() if v.get("qfile")], "quarantineUri")
        rows_out = io.count_rows(out_staging, out.format, out.options)
        rows_in = sum(v["in"] for v in per_part.values())
        rows_q = sum(v["q"] for v in per_part.values())
        if expected_in is not None and rows_in != expected_in:
            raise TfscoreError(f"row count mismatch: the input files hold {expected_in} rows but {rows_in} were read; "
                               "nothing was committed")
        if rows_in != rows_out + rows_q:
            raise TfscoreError(f"row count mismatch: {rows_in} rows in, {rows_out} written + {rows_q} quarantined; "
                               "nothing was committed")
        io.commit(out_staging, out.uri, out.mode, run_id)
        if q_staging:
            io.commit(q_staging, spec.quarantine_uri, out.mode, run_id)
    except Exception as exc:
        if sigterm.hit:
            _stop_tasks(sc)
        io.discard(out_staging)
        io.discard(q_staging)
        if sigterm.hit:
            raise Terminated(_SigtermGuard.MESSAGE) from None
        inner = unwrap(exc)
        if inner is not None:
            raise inner from None
        raise
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)

    seconds = time.time() - started
    result = Result(rows_in=rows_in, rows_out=rows_out, rows_quarantined=rows_q, seconds=round(seconds, 3),
                    rows_per_second=round(rows_in / seconds, 1) if seconds > 0 else 0.0, output_uri=out.uri,
                    quarantine_uri=spec.quarantine_uri, model=model.status())
    io.write_manifest(out.uri, _manifest(job, model, result, reader, writer_kind, run_id, started, per_part), out.mode)
    return result


class _SigtermGuard:
    """While scoring, SIGTERM (the pod deleted or evicted; tini forwards it) raises Terminated in the main thread, so the
    staging directories are discarded instead of being left beside the output by a process killed mid-write. py4j may
    rewrap the exception raised inside its socket read: `hit` tells the caller what really happened."""

    MESSAGE = "terminated (SIGTERM: the driver pod was deleted or evicted) while scoring; nothing was committed"

    def __init__(self) -> None:
        self.hit = False
        self._previous: Any = None

    def _raise(self, signum, frame) -> None:
        self.hit = True
        raise Terminated(self.MESSAGE)

    def __enter__(self) -> _SigtermGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def _stop_tasks(sc, timeout: float = 15.0) -> None:
    """Cancel the scoring job and wait (bounded) until none of its tasks is active any more, so nothing writes into the
    staging after it is discarded."""
    try:
        sc.cancelJobGroup(GROUP)
        tracker = sc.statusTracker()

        def active() -> int:
            stages = [s for j in tracker.getJobIdsForGroup(GROUP) if (info := tracker.getJobInfo(j)) is not None
                      for s in info.stageIds]
            return sum(info.numActiveTasks for s in stages if (info := tracker.getStageInfo(s)) is not None)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and active():
            time.sleep(0.2)
    except Exception:  # noqa: BLE001 - best effort: the process is going away anyway
        pass


def _raise_task_error(per_part: dict[int, dict[str, Any]]) -> None:
    errors = sorted((p, v) for p, v in per_part.items() if v.get("error"))
    if errors:
        kind = InvalidRowError if errors[0][1].get("errorKind") == "InvalidRowError" else TfscoreError
        raise kind(errors[0][1]["error"])


def _quote(col: str) -> str:
    return "`" + col.replace("`", "``") + "`"


def _columns_named(spec, model: ResolvedModel) -> list[str]:
    """Input columns the signature inputs come from (explicitly mapped, or the column of the same name)."""
    cols: list[str] = []
    for name in model.signature.inputs:
        v = spec.input.columns.get(name, name)
        cols.extend(v if isinstance(v, list) else [v])
    return cols


def _task(model: ResolvedModel, binding: Binding, spec, q_staging, source, counts, fault, run_id, writer_kind,
          out_staging, splits=()) -> Task:
    compression = spec.output.options.get("compression", "snappy").lower()
    return Task(model=model, binding=binding, batch_size=spec.batch_size,
                quarantine=spec.on_invalid_row == "quarantine", quarantine_staging=q_staging, source=source,
                splits=tuple(splits), read_columns=tuple(binding.read_columns), counts=counts, fault=fault,
                run_id=run_id, writer=writer_kind, out_staging=out_staging,
                compression="none" if compression == "uncompressed" else compression)


def _empty_binding(model: ResolvedModel, spec) -> Binding:
    raise TfscoreError(f"input.uri: {spec.input.uri} holds no data files")


def _spark_schema(binding: Binding):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(binding.output_schema())


def _manifest(job: ScoringJob, model: ResolvedModel, result: Result, reader: str, writer: str, run_id: str,
              started: float,
              per_part: dict[int, dict[str, Any]]) -> dict[str, Any]:
    firsts = [v["firstBatchAt"] for v in per_part.values() if v.get("firstBatchAt")]
    spans = [(v["startedAt"], v["endedAt"]) for v in per_part.values() if v.get("startedAt") and v.get("endedAt")]
    return {
        "tfscore": __version__,
        "runId": run_id,
        "job": job.metadata.name,
        "startedAt": datetime.fromtimestamp(started, UTC).isoformat(),
        "finishedAt": datetime.now(UTC).isoformat(),
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "reader": reader,
        "writer": writer,
        "tasks": len(per_part),
        "firstBatchAt": min(firsts) if firsts else None,
        # Task time vs wall time tells whether the executors were busy (taskSeconds ≈ cores × scoringSeconds).
        "scoringSeconds": round(max(e for _, e in spans) - min(s for s, _ in spans), 3) if spans else 0.0,
        "taskSeconds": round(sum(e - s for s, e in spans), 3),
        "workerPeakRssMb": max((v.get("peakRssMb") or 0 for v in per_part.values()), default=0),
        "model": {**model.status(), "versionUri": model.version_uri, "tags": list(model.tags),
                  "inputs": [t.describe() for t in model.signature.inputs.values()],
                  "outputs": [t.describe() for t in model.signature.outputs.values()]},
        "input": job.spec.input.to_wire(),
        "output": job.spec.output.to_wire(),
        "result": result.to_wire(),
    }
