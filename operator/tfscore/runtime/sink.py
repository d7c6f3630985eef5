"""Where a run's rows go before the commit: Parquet files the Python workers write, or Spark's writer, into staging.

Either way the output's types are the Arrow types of their Spark types (arrow_types.held_schema), so the two writers
write the same columns; the commit (commit.py) then moves the staged files into place.
"""

from __future__ import annotations

import io
import posixpath
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from tfscore.api.scoringjob import ScoringJob
from tfscore.runtime import storage
from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.report import Totals

ARROW_COMPRESSION = {"snappy", "zstd", "gzip", "lz4", "brotli", "none", "uncompressed"}


def wants_arrow_writer(job: ScoringJob) -> bool:
    """Which writer: unpartitioned Parquet with at most a compression option is written by the Python workers (no JVM
    row conversion); formats, partitionBy and writer options need Spark's writers."""
    out = job.spec.output
    if out.writer != "auto":
        return out.writer == "arrow"
    return out.format == "parquet" and not out.partition_by and set(out.options) <= {"compression"} \
        and out.options.get("compression", "snappy").lower() in ARROW_COMPRESSION


@dataclass(frozen=True)
class ArrowFiles:
    """The workers write attempt-unique Parquet files into staging; Spark only schedules, retries and counts."""

    staging: str
    kind: str = "arrow"

    def write(self, scored, job: ScoringJob) -> None:
        scored.write.format("noop").mode("overwrite").save()

    def files(self, totals: Totals, schema: pa.Schema | None = None) -> list[str]:
        """Exactly the files of the attempts Spark counted (retried and speculative attempts' files are left out); with
        none at all (no rows), one empty Parquet file so readers still see the schema."""
        if totals.output_files or schema is None:
            return list(totals.output_files)
        fs, root = storage.filesystem(self.staging, "output.uri")
        path = posixpath.join(root, "part-00000-empty.parquet")
        fs.makedirs(root, exist_ok=True)
        with fs.open(path, "wb") as fh:
            pq.write_table(schema.empty_table(), fh)
        return [storage.with_protocol(fs, path)]


@dataclass(frozen=True)
class SparkWriter:
    """Spark's writer (every format, partitionBy, options) into staging; its commit protocol makes retried tasks write
    once there."""

    staging: str
    kind: str = "spark"

    def write(self, scored, job: ScoringJob) -> None:
        out = job.spec.output
        writer = scored.write.format(out.format).options(**out.options).mode("errorIfExists")
        if out.partition_by:
            writer = writer.partitionBy(*out.partition_by)
        writer.save(storage.spark_uri(self.staging))

    def files(self, totals: Totals, schema: pa.Schema | None = None) -> list[str]:
        fs, root = storage.filesystem(self.staging, "output.uri")
        return [storage.with_protocol(fs, f) for f in storage.data_files(fs, root)] if fs.exists(root) else []


def check_format(schema: pa.Schema, fmt: str) -> None:
    """Before any work: a column the output format cannot hold, named (CSV holds scalars only: no binary, arrays,
    structs or maps — Spark's CSV writer would fail at the end of the run instead)."""
    if fmt != "csv":
        return
    for f in schema:
        t = f.type
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_nested(t):
            raise TfscoreError(f"output.format: column {f.name!r} is {t}, which csv cannot hold; choose parquet, orc "
                               "or json, or leave the column out of the output")


def compression(job: ScoringJob) -> str:
    value = job.spec.output.options.get("compression", "snappy").lower()
    return "none" if value == "uncompressed" else value


def count_rows(files: list[str], fmt: str, options: dict[str, str] | None = None, field: str = "output.uri") -> int:
    """Rows in the given data files, counted from the files themselves (footers for parquet/orc)."""
    total = 0
    for f in files:
        fs, path = storage.filesystem(f, field)
        with fs.open(path, "rb") as fh:
            if fmt == "parquet":
                total += pq.ParquetFile(fh).metadata.num_rows
            elif fmt == "orc":
                import pyarrow.orc as orc

                total += orc.ORCFile(fh).nrows
            elif fmt == "json":
                total += sum(1 for line in fh if line.strip())
            elif fmt == "csv":
                import pyarrow.csv as pcsv

                header = (options or {}).get("header", "false").lower() == "true"
                opts = pcsv.ReadOptions(autogenerate_column_names=not header)
                parse = pcsv.ParseOptions(newlines_in_values=True)
                total += pcsv.read_csv(io.BytesIO(fh.read()), read_options=opts, parse_options=parse).num_rows
            else:
                raise TfscoreError(f"output.format: cannot count rows of format {fmt!r}")
    return total
