"""The scoring loop that runs inside Spark's Python workers.

Columnar end to end: Arrow record batches in, one TensorFlow signature call per batch, Arrow record batches out. One model
per Python worker (loaded once, reused across tasks), TensorFlow's thread pools sized to the task's cores before its first
op, and nothing held beyond the current batch, so memory stays flat whatever the partition size. The output statistics
are sketched here, in the same pass.
"""

from __future__ import annotations

import os
import resource
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tfscore.runtime import arrow_types, errors, splits, storage
from tfscore.runtime.binding import REASON_COLUMN
from tfscore.runtime.ensemble import Pass
from tfscore.runtime.errors import InvalidRowError, TfscoreError, WorkerError
from tfscore.runtime.model import load_function
from tfscore.runtime.predstats import TaskStatistics
from tfscore.runtime.report import TaskReport

ATTEMPTS_DIR = "_attempts"  # task-attempt files live here until the driver commits the counted ones


@dataclass(frozen=True)
class FaultInjection:
    """Test hook (spark.tfscore.faultInjection = 'partition=0,attempt=0,afterBatches=1'): fail a task on purpose."""

    partition: int
    attempt: int | None  # None: every attempt
    after_batches: int

    @classmethod
    def parse(cls, text: str | None) -> FaultInjection | None:
        if not text:
            return None
        kv = dict(part.split("=", 1) for part in text.split(",") if part)
        attempt = kv.get("attempt", "0")
        return cls(int(kv.get("partition", 0)), None if attempt == "*" else int(attempt),
                   int(kv.get("afterBatches", 0)))


@dataclass(frozen=True)
class Task:
    """Everything a Python worker needs, shipped once per task (small and picklable)."""

    scoring: Pass  # the models of the pass, each bound to the input
    batch_size: int
    source: str  # how errors name the input
    output_schema: pa.Schema  # the types both writers write (arrow_types.held_schema of the binding's output)
    run_id: str = ""
    quarantine_staging: str | None = None  # set: invalid rows are quarantined there
    out_staging: str | None = None  # set: the worker writes Parquet itself (the Arrow writer); unset: Spark writes
    compression: str = "snappy"
    splits: tuple[splits.Split, ...] = ()  # the Arrow reader's splits (empty: Spark feeds the batches)
    input_schema: pa.Schema | None = None  # the Arrow reader's schema (partition column types)
    input_names: tuple[str, ...] = ()  # Spark feeds positionally renamed columns: these are their real names
    counts: object = None  # where reports go: a Spark accumulator of {partition: TaskReport}, or the local engine's
    fault: FaultInjection | None = None


# (partition, attempt, cores) of the task this process runs when the local engine (local_engine.py), not Spark, runs it.
LOCAL_TASK: tuple[int, int, int] | None = None


def _task_context():
    if LOCAL_TASK is not None:  # the local engine's worker: no Spark (and no pyspark import) in this process
        return LOCAL_TASK
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:  # called outside Spark (unit tests): one core, partition 0
        return 0, 0, 1
    return ctx.partitionId(), ctx.attemptNumber(), max(1, int(ctx.cpus()))


def _rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly `size` rows (the last may be smaller), slicing without copies where possible."""
    pending: list[pa.RecordBatch] = []
    have = 0
    for b in batches:
        if not pending and b.num_rows == size:
            yield b
            continue
        pending.append(b)
        have += b.num_rows
        while have >= size:
            table = pa.Table.from_batches(pending)
            head, rest = table.slice(0, size), table.slice(size)
            yield head.combine_chunks().to_batches()[0]
            pending = rest.to_batches() if rest.num_rows else []
            have = rest.num_rows
    if have:
        table = pa.Table.from_batches(pending).combine_chunks()
        yield from table.to_batches()


class PartWriter:
    """One Parquet file per task attempt in a staging directory: `part-<partition>-<run>-a<attempt>-<uuid>.parquet`.

    Attempt-unique names mean a retried or speculative attempt never touches another's file; the driver commits only the
    file of the attempt Spark counted."""

    # Buffered batches become one row group (not one tiny row group per batch) of at most pyarrow's own default
    # length, 1Mi rows, or 64 MB: the buffer fills with the partition up to its bound, and narrow outputs never reach
    # 64 MB (it held 5.6M rows of `id, score`: a worker's peak ×1.19 from 500k to 5M rows; ×1.10–1.14 with the row bound).
    ROW_GROUP_ROWS = 1 << 20
    ROW_GROUP_BYTES = 64 << 20

    def __init__(self, staging: str, run_id: str, partition: int, attempt: int, compression: str = "snappy",
                 field: str = "output.uri"):
        self.path = (f"{staging.rstrip('/')}/{ATTEMPTS_DIR}/part-{partition:05d}-{run_id}-a{attempt}-"
                     f"{uuid.uuid4().hex[:6]}.parquet")
        self.compression, self.field = compression, field
        self.writer = None
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self.writer is None:
            import pyarrow.parquet as pq

            fs, path = storage.filesystem(self.path, self.field)
            fs.makedirs(os.path.dirname(path), exist_ok=True)
            self._fh = fs.open(path, "wb")
            self.writer = pq.ParquetWriter(self._fh, batch.schema, compression=self.compression)
            self._pending: list[pa.RecordBatch] = []
            self._pending_bytes = self._pending_rows = 0
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_bytes >= self.ROW_GROUP_BYTES or self._pending_rows >= self.ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending)
            self.writer.write_table(table, row_group_size=table.num_rows)
            self._pending, self._pending_bytes, self._pending_rows = [], 0, 0

    def close(self) -> str | None:
        """Finish the file; its path, or None when nothing was written. Idempotent."""
        if self.writer is None:
            return None
        self._flush()
        writer, self.writer = self.writer, None
        writer.close()
        self._fh.close()
        return self.path


def with_reason(batch: pa.RecordBatch, reasons: np.ndarray) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(list(batch.columns) + [pa.array(reasons.tolist(), type=pa.string())],
                                      names=list(batch.schema.names) + [REASON_COLUMN])


def _describe_row(batch: pa.RecordBatch, i: int, scoring: Pass) -> str:
    ids = {c: batch.column(c)[i].as_py() for c in scoring.passthrough[:3]}
    return f" ({', '.join(f'{k}={v!r}' for k, v in ids.items())})" if ids else ""


class Where:
    """Where the current batch comes from, for error messages (the Arrow reader moves it from split to split)."""

    def __init__(self, text: str, first_row: int = 0):
        self.text, self.first_row = text, first_row


def score_batches(task: Task, batches: Iterable[pa.RecordBatch], where: Where) -> Iterator[pa.RecordBatch]:
    """Score a stream of input batches; yields output batches (none with the Arrow writer, which writes them itself).

    The task's report goes to the accumulator when it ends. A data error (TfscoreError) ends the task *successfully* with
    the error in its report instead: bad data fails the same way on every attempt, so Spark must not retry it, and the
    driver cancels the job and reports the message as it is."""
    partition, attempt, cores = _task_context()
    started_at = time.time()
    quarantine = output = None
    report = TaskReport(partition)
    try:
        scoring = task.scoring
        fns = [load_function(m.model, cores) for m in scoring.members]  # each model once per worker process
        stats = TaskStatistics(scoring)
        if task.quarantine_staging:
            quarantine = PartWriter(task.quarantine_staging, task.run_id, partition, attempt, field="quarantineUri")
        if task.out_staging:
            output = PartWriter(task.out_staging, task.run_id, partition, attempt, task.compression)
        rows_in = rows_out = 0
        offset = 0  # rows seen in this task, for error messages
        first_batch_at = None
        for n_batch, batch in enumerate(_rebatch(batches, task.batch_size)):
            if task.fault and task.fault.partition == partition and task.fault.attempt in (None, attempt) \
                    and n_batch >= task.fault.after_batches:
                raise RuntimeError(f"injected fault: partition {partition} attempt {attempt} after {n_batch} batches")
            n = batch.num_rows
            rows_in += n
            invalid, reasons = scoring.validate(batch)
            if invalid is not None:
                if quarantine is None:
                    i = int(np.argmax(invalid))
                    raise InvalidRowError(f"{reasons[i]} at row {where.first_row + offset + i} of {where.text}"
                                          f"{_describe_row(batch, i, scoring)}; fix the data or set "
                                          "onInvalidRow: quarantine")
                quarantine.write(with_reason(batch.filter(pa.array(invalid)), reasons[invalid]))
                batch = batch.filter(pa.array(~invalid))
            offset += n
            if batch.num_rows == 0:
                continue
            results = []
            for member, fn in zip(scoring.members, fns, strict=True):
                result = fn(**member.binding.to_tensors(batch))
                results.append({o.tensor.name: result[o.tensor.name].numpy() for o in member.binding.outputs})
                del result  # release the output tensors now, not at the next garbage collection
            if first_batch_at is None:
                first_batch_at = time.time()
            out = arrow_types.cast(scoring.to_output(batch, results), task.output_schema)
            stats.update(out)
            rows_out += out.num_rows
            if output is not None:
                output.write(out)
            else:
                yield out
        report = TaskReport(partition, rows_in, rows_out, quarantine.rows if quarantine else 0,
                            output.close() if output else None, quarantine.close() if quarantine else None,
                            started_at, first_batch_at, time.time(), _peak_rss_mb(), statistics=stats.to_wire())
    except TfscoreError as exc:
        if task.counts is None:
            raise WorkerError(exc) from None
        report = TaskReport(partition, error=str(exc), error_kind=type(exc).__name__)
    finally:
        for w in (output, quarantine):
            if w is not None:
                try:
                    w.close()  # no-op when already closed; on failure the staging directory is discarded anyway
                except Exception:  # noqa: BLE001
                    pass
    if task.counts is not None:
        task.counts.add({partition: report})


def _peak_rss_mb() -> float:
    """This Python worker's peak resident memory so far."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def map_spark_batches(task: Task):
    """mapInArrow function for the Spark reader: Spark feeds the input batches, under positional names (PySpark's
    mapInArrow re-selects its input columns unquoted, so `f.1` or `a b` would not resolve): the real names come back."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        partition, _, _ = _task_context()

        def named() -> Iterator[pa.RecordBatch]:
            for b in batches:
                yield pa.RecordBatch.from_arrays(b.columns, names=list(task.input_names))

        yield from score_batches(task, named(), Where(f"{task.source} (partition {partition})"))

    return run


def map_splits(task: Task):
    """mapInArrow function for the Arrow reader: each input row is a split index; the worker reads it with pyarrow."""

    def run(ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        where = Where(task.source)
        columns = list(task.scoring.read_columns)

        def batches():
            for b in ids:
                for idx in b.column(0).to_pylist():
                    split = task.splits[idx]
                    where.text, where.first_row = split.uri, split.first_row
                    try:
                        yield from splits.read_split(split, columns, task.batch_size, task.input_schema)
                    except (OSError, pa.ArrowException) as exc:
                        raise TfscoreError(f"input.uri: cannot read {split.uri}: {errors.cause(exc)}") from exc

        yield from score_batches(task, batches(), where)

    return run
