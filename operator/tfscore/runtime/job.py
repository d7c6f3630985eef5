"""Run one ScoringJob: check → resolve → bind → read → score → write → verify → commit.

Each failure names the field, column or file and leaves nothing behind: output is staged beside its target and moved
into place only by the commit (commit.py), after the row counts were verified from the written files.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tfscore import __version__
from tfscore.api.contract import IncrementalResult, Result
from tfscore.api.scoringjob import ScoringJob, model_entries
from tfscore.runtime import arrow_types, commit, ensemble, predstats, report, source, storage
from tfscore.runtime.engine import start
from tfscore.runtime.errors import DriftExceeded, InvalidRowError, Terminated, TfscoreError, unwrap
from tfscore.runtime.model import ResolvedModel
from tfscore.runtime.progress import LogSink, PodAnnotationSink, ProgressMonitor
from tfscore.runtime.report import TaskReport, Totals, timings
from tfscore.runtime.scorer import FaultInjection, Task
from tfscore.runtime.session import applied_environment, job_settings, resolve_master
from tfscore.runtime.sink import ArrowFiles, SparkWriter, check_format, compression, count_rows, wants_arrow_writer


@dataclass
class RunOptions:
    master: str | None = None
    properties: dict[str, str] | None = None
    show_progress: bool = False
    spark: Any = None  # an existing SparkSession (tests, notebooks)
    engine: str = "auto"  # who runs the tasks (engine.choose): auto, local (no JVM) or spark


def run_job(job: ScoringJob, options: RunOptions | None = None) -> Result:
    opts = options or RunOptions()
    if opts.spark is not None:  # a running session: its JVM and workers have their environment already
        with job_settings(opts.spark, job.spec):
            return _run_job(job, opts)
    with applied_environment(job.spec, resolve_master(opts.master, opts.properties or {})):
        return _run_job(job, opts)


def _attempt() -> int:
    """The driver pod's attempt number (`<job>-driver-<n>`), 0 for a local run."""
    m = re.search(r"-driver-(\d+)$", os.environ.get("POD_NAME", ""))
    return int(m.group(1)) if m else 0


def _committer(job: ScoringJob) -> commit.Committer:
    spec = job.spec
    uid = (job.metadata.model_extra or {}).get("uid")
    run_id = commit.new_run_id(uid)
    out = commit.Target("output.uri", spec.output.uri, commit.staging_uri(spec.output.uri, run_id, "out"))
    q = (commit.Target("quarantineUri", spec.quarantine_uri, commit.staging_uri(spec.quarantine_uri, run_id, "q"))
         if spec.quarantine_uri else None)
    with storage.storage_errors("output.uri", spec.output.uri):
        return commit.Committer(out, q, str(spec.output.mode), uid or run_id, run_id, _attempt(), job.metadata.name)


def check_locations(job: ScoringJob) -> None:
    """Locations that must not overlap (writing one could destroy the other), compared in one spelling (api/uris)."""
    spec = job.spec
    out = spec.output
    pairs = [("output.uri", out.uri, "input.uri", spec.input.uri),
             *(("output.uri", out.uri, f"{e.label}.uri", e.spec.uri) for e in model_entries(spec)),
             ("quarantineUri", spec.quarantine_uri, "output.uri", out.uri),
             ("quarantineUri", spec.quarantine_uri, "input.uri", spec.input.uri)]
    for field, uri, other_field, other in pairs:
        if uri and other and storage.location(uri).overlaps(storage.location(other)):
            raise TfscoreError(f"{field}: {uri} overlaps {other_field} {other}; writing there could destroy the "
                               f"{other_field.split('.')[0]}")
    fs, path = storage.filesystem(out.uri, "output.uri")
    with storage.storage_errors("output.uri", out.uri):
        if fs.exists(path) and fs.isfile(path):
            raise TfscoreError(f"output.uri: {out.uri} is a file, not a directory")
    for col in out.partition_by:
        if col not in out.passthrough and col not in out.predictions.values():
            raise TfscoreError(f"output.partitionBy: column {col!r} is not an output column (add it to "
                               "output.passthrough)")


def _run_job(job: ScoringJob, opts: RunOptions) -> Result:
    out = job.spec.output
    marks = {"started": time.time()}
    marks["origin"] = report.process_started_at() or marks["started"]
    check_locations(job)
    committer = _committer(job)
    with storage.storage_errors("output.uri", out.uri):
        done = committer.recover()
    for note in committer.notes:
        print(f"tfscore: {note}", file=sys.stderr)
    if done is not None:  # this job's commit already happened (an earlier attempt was stopped right after it)
        return Result.model_validate(done)
    with storage.storage_errors("output.uri", out.uri):
        committer.check_target()
        committer.acquire()
    try:
        return _score_and_commit(job, opts, committer, marks)
    except BaseException:
        committer.discard()
        raise


def _score_and_commit(job: ScoringJob, opts: RunOptions, committer: commit.Committer, marks: dict[str, float]):
    engine, models = start(job, opts.engine, opts.master, opts.properties or {}, opts.spark, marks)
    try:
        return _score_on(engine, models, job, opts, committer, marks)
    except BaseException:
        engine.stop()  # no task may write into the staging once the caller discards it
        raise
    finally:
        engine.close()


def _score_on(engine, models: list[ResolvedModel], job: ScoringJob, opts: RunOptions, committer: commit.Committer,
              marks: dict[str, float]) -> Result:
    spec, out = job.spec, job.spec.output
    engine.check(job)

    # bind: the source's schema (partition columns included) against the signature
    split_rows = engine.conf("spark.tfscore.splitRows")
    entries = model_entries(spec)
    needed = list(dict.fromkeys([*out.passthrough, *(c for e, m in zip(entries, models, strict=True)
                                                     for c in _columns_named(e.columns, m))]))
    if source.wants_arrow_reader(job):
        src = source.open_arrow(engine.spark, job, needed, engine.parallelism, int(split_rows) if split_rows else None)
        if src.empty and spec.input.incremental is None:
            raise TfscoreError(f"input.uri: {spec.input.uri} holds no data files")
    else:
        src = source.open_spark(engine.spark, job, needed)
    scoring = ensemble.bind_all(entries, models, src.schema, out.passthrough, src.describe)
    output_schema = arrow_types.held_schema(scoring.output_schema())
    output_struct = arrow_types.spark_schema(output_schema)
    check_format(output_schema, str(out.format))
    sink = ArrowFiles(committer.output.staging) if wants_arrow_writer(job) else SparkWriter(committer.output.staging)
    counts = engine.new_counts()
    task = Task(scoring=scoring, batch_size=spec.batch_size, source=src.describe,
                output_schema=output_schema, run_id=committer.run_id,
                quarantine_staging=committer.quarantine.staging if committer.quarantine else None,
                out_staging=committer.output.staging if sink.kind == "arrow" else None, compression=compression(job),
                input_names=tuple(scoring.read_columns), counts=counts,
                fault=FaultInjection.parse(engine.conf("spark.tfscore.faultInjection")), **src.task_fields())

    # read → score → write, into staging
    sinks = [PodAnnotationSink.from_env(), None if opts.show_progress else LogSink()]

    def monitor(tracker) -> ProgressMonitor:
        return ProgressMonitor(tracker, src.expected_rows, opts.show_progress, sinks)

    sigterm = _SigtermGuard()
    try:
        with sigterm:
            try:
                reports: dict[int, TaskReport] = engine.score(src, sink, task, output_struct, job, monitor)
            except Exception:
                _raise_task_error(engine.reports(counts))  # a data error cancels the job: report it, not the cancel
                raise
            marks["scored"] = time.time()
            marks.update(engine.marks())
            totals = Totals.of(reports)
            _raise_task_error(reports)
            # verify: rows in == rows out + rows quarantined, counted from the written files
            new_files = {"output.uri": sink.files(totals, output_schema)}
            if committer.quarantine is not None:
                new_files["quarantineUri"] = list(totals.quarantine_files)
            with storage.storage_errors("output.uri", out.uri):
                rows_out = count_rows(new_files["output.uri"], out.format, out.options)
            _verify(src.expected_rows, totals, rows_out)
            marks["verified"] = time.time()
            sketches, agreements = predstats.merge(r.statistics for r in reports.values())
            drifts = predstats.check_drift(spec.drift, sketches)
            _refuse_drift(spec.drift, drifts)
    except Exception as exc:
        if sigterm.hit:
            raise Terminated(_SigtermGuard.MESSAGE) from None
        inner = unwrap(exc)
        if inner is not None:
            raise inner from None
        raise

    seconds = time.time() - marks["started"]
    statuses = [{**m.status(), **({"name": e.name} if e.name else {})} for e, m in zip(entries, models, strict=True)]
    result = Result(rows_in=totals.rows_in, rows_out=rows_out, rows_quarantined=totals.rows_quarantined,
                    seconds=round(seconds, 3), rows_per_second=round(totals.rows_in / seconds, 1) if seconds > 0 else 0.0,
                    output_uri=out.uri, quarantine_uri=spec.quarantine_uri, model=statuses[0],
                    models=statuses if len(statuses) > 1 else [],
                    statistics=predstats.summary(sketches, agreements, drifts),
                    incremental=_incremental_result(job, src.partitions),
                    timeline=report.timeline(marks["origin"], marks, reports.values()))
    record = _manifest(job, models, result, src.kind, sink.kind, engine, committer.run_id, marks, reports)
    record["statistics"] = {**result.to_wire().get("statistics", {}),
                            "sketches": sketches.to_wire() if sketches is not None else None}
    with storage.storage_errors("output.uri", out.uri):
        committer.commit(new_files, result.to_wire(), record)
    marks["committed"] = time.time()
    return result.model_copy(update={"timeline": report.timeline(marks["origin"], marks, reports.values())})


def _verify(expected_in: int | None, totals: Totals, rows_out: int) -> None:
    if expected_in is not None and totals.rows_in != expected_in:
        raise TfscoreError(f"row count mismatch: the input files hold {expected_in} rows but {totals.rows_in} were "
                           "read; nothing was committed")
    if totals.rows_in != rows_out + totals.rows_quarantined:
        raise TfscoreError(f"row count mismatch: {totals.rows_in} rows in, {rows_out} written + "
                           f"{totals.rows_quarantined} quarantined; nothing was committed")


def _incremental_result(job: ScoringJob, partitions: tuple[str, ...]) -> IncrementalResult | None:
    inc = job.spec.input.incremental
    if inc is None:
        return None
    values = [part.split("=", 1)[1] for d in partitions for part in d.split("/")
              if part.startswith(f"{inc.partition_key}=")]
    # In the partition type's order, not the directories' string order: hour=10 comes after hour=9, so the watermark
    # (the next run's `after`) is the highest value scored. Dates and timestamps are ISO strings, ordered as strings.
    values = sorted(dict.fromkeys(values), key=_value_order)
    return IncrementalResult(partition_key=inc.partition_key, partitions=values,
                             watermark=values[-1] if values else inc.after)


def _value_order(value: str) -> tuple[int, float, str]:
    try:
        return 0, float(value), value  # integers and decimals alike (Spark gives one partition column one type)
    except ValueError:
        return 1, 0.0, value


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


def _raise_task_error(reports: dict[int, TaskReport]) -> None:
    first = Totals.of(reports).first_error
    if first is not None:
        raise (InvalidRowError if first.error_kind == "InvalidRowError" else TfscoreError)(first.error)


def _refuse_drift(check, drifts: dict[str, Any]) -> None:
    """driftPolicy action fail: nothing is committed, and the run fails with reason DriftExceeded."""
    if check is None or str(check.action) != "fail":
        return
    exceeded = {name: d for name, d in drifts.items() if d["exceeded"]}
    if exceeded:
        name, d = next(iter(exceeded.items()))
        raise DriftExceeded(f"prediction column {name!r} drifted from the reference run {d['reference']}: "
                            f"{d['metric']} {d['value']:.4f} > {d['threshold']:g}"
                            + (f" (and {len(exceeded) - 1} more column(s))" if len(exceeded) > 1 else "")
                            + "; nothing was committed")


def _columns_named(columns, model: ResolvedModel) -> list[str]:
    """Input columns the signature inputs come from (explicitly mapped, or the column of the same name)."""
    cols: list[str] = []
    for name in model.signature.inputs:
        v = columns.get(name, name)
        cols.extend(v if isinstance(v, list) else [v])
    return cols


def _describe_model(model: ResolvedModel) -> dict[str, Any]:
    return {**model.status(), "versionUri": model.version_uri, "tags": list(model.tags), "kind": model.kind,
            "inputs": [t.describe() for t in model.signature.inputs.values()],
            "outputs": [t.describe() for t in model.signature.outputs.values()]}


def _manifest(job: ScoringJob, models: list[ResolvedModel], result: Result, reader: str, writer: str, engine,
              run_id: str, marks: dict[str, float], reports: dict[int, TaskReport]) -> dict[str, Any]:
    return {
        "tfscore": __version__,
        "runId": run_id,
        "job": job.metadata.name,
        "startedAt": datetime.fromtimestamp(marks["started"], UTC).isoformat(),
        "finishedAt": datetime.now(UTC).isoformat(),
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "reader": reader,
        "writer": writer,
        "engine": engine.kind,
        **engine.describe(),
        **timings(reports.values()),
        "model": _describe_model(models[0]),
        **({"models": [_describe_model(m) for m in models]} if len(models) > 1 else {}),
        "input": job.spec.input.to_wire(),
        "output": job.spec.output.to_wire(),
        "result": result.to_wire(),
    }
