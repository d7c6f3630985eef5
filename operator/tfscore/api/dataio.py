"""What a ScoringJob reads and writes: `Input` (files or a table, format, `where`, incremental partitions) and `Output`
(location, format, mode, passthrough and prediction columns, partitioning). Part of the ScoringJob kind
(api/scoringjob.py re-exports every name), kept apart so each module stays one screenful of concerns."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from tfscore.api.common import MAX_ITEMS, MAX_NAME, MAX_URI, MAX_VALUE, Name, Value, WireModel

INPUT_SOURCE_RULE = {
    "rule": "has(self.uri) != has(self.table)",
    "message": "exactly one of input.uri or input.table must be set",
}
TABLE_FORMAT_RULE = {
    "rule": "!has(self.table) || !has(self.format) || self.format == 'table'",
    "message": "input.format must be 'table' (or unset) when input.table is set",
}

class InputFormat(StrEnum):
    """File format of the input (or `table` for a catalog table)."""

    parquet = "parquet"
    orc = "orc"
    csv = "csv"
    json = "json"
    table = "table"


class Incremental(WireModel):
    """Score only the Hive partitions `<partitionKey>=<value>/` of input.uri whose value lies in (after, until].

    Values are compared as Spark infers partition types (integers as integers, dates and timestamps in time order, the
    rest as strings). A ScoringSchedule sets `after` to its watermark for each run; the run's result reports the
    partitions it scored and the new watermark."""

    partition_key: Annotated[str, Field(min_length=1, max_length=MAX_NAME,
                                        description="The partition column (e.g. dt).")]
    after: Annotated[str | None, Field(max_length=MAX_NAME,
                                       description="Score partitions with a value greater than this (absent: "
                                                   "from the first).")] = None
    until: Annotated[str | None, Field(max_length=MAX_NAME, description="And at most this (absent: up to the newest); e.g. the "
                                                   "scheduled hour, so a partition still being written is left for "
                                                   "the next run.")] = None


class Input(WireModel):
    """Where the rows come from."""

    uri: Annotated[str | None, Field(min_length=1, max_length=MAX_URI, description="Files or directory to read "
                                                                                   "(path or URI).")] = None
    table: Annotated[str | None, Field(min_length=1, max_length=MAX_NAME, description="Catalog table to read "
                                                                                      "instead of uri.")] = None
    format: Annotated[InputFormat | None, Field(description="File format (default parquet; 'table' with table).")] = None
    options: Annotated[dict[str, Value], Field(max_length=64, description="Reader options passed to Spark (e.g. "
                                                                          "header: 'true').")] = {}
    where: Annotated[str | None, Field(min_length=1, max_length=MAX_VALUE, description="Optional Spark SQL filter "
                                                                                       "applied before scoring.")] = None
    columns: Annotated[
        dict[str, Name | Annotated[list[Name], Field(max_length=65536)]],
        Field(max_length=MAX_ITEMS,
              description="Signature input name → one column (scalar, or an array reshaped to the input's shape) or a "
                          "list of scalar columns stacked into a [None, k] tensor. Inputs not listed come from the "
                          "column of the same name."),
    ] = {}
    reader: Annotated[
        Literal["auto", "arrow", "spark"],
        Field(description="auto: Python workers read plain Parquet splits with pyarrow (no JVM row conversion) when "
                          "there is no SQL filter; otherwise Spark reads. arrow/spark force one reader."),
    ] = "auto"
    incremental: Annotated[Incremental | None, Field(description="Score only new Hive partitions (recurring runs).")] \
        = None

    @property
    def resolved_format(self) -> str:
        if self.format is not None:
            return self.format if isinstance(self.format, str) else self.format.value
        return "table" if self.table else "parquet"

    @model_validator(mode="after")
    def _check_rules(self) -> Input:
        if (self.uri is None) == (self.table is None):
            raise ValueError(INPUT_SOURCE_RULE["message"])
        if self.table is not None and self.format not in (None, "table", InputFormat.table):
            raise ValueError(TABLE_FORMAT_RULE["message"])
        if self.uri is not None and self.format in ("table", InputFormat.table):
            raise ValueError("input.format 'table' needs input.table, not input.uri")
        if self.reader == "arrow" and (self.where or self.resolved_format != "parquet"):
            raise ValueError("input.reader 'arrow' reads plain Parquet files only (no where, format parquet)")
        if self.incremental is not None and self.uri is None:
            raise ValueError("input.incremental needs input.uri (Hive partition directories), not input.table")
        return self


class OutputFormat(StrEnum):
    """File format of the output."""

    parquet = "parquet"
    orc = "orc"
    csv = "csv"
    json = "json"


class WriteMode(StrEnum):
    """What happens to an existing output."""

    error_if_exists = "errorIfExists"
    overwrite = "overwrite"
    append = "append"


class Output(WireModel):
    """Where the predictions go."""

    uri: Annotated[str, Field(min_length=1, max_length=MAX_URI, description="Output directory (path or URI).")]
    format: Annotated[OutputFormat, Field(description="File format.")] = OutputFormat.parquet
    mode: Annotated[
        WriteMode,
        Field(description="errorIfExists (default): refuse to touch existing output. overwrite: replace it only when "
                          "the job succeeds (the old data survives a failed job). append: add files; a retried task "
                          "never duplicates rows."),
    ] = WriteMode.error_if_exists
    passthrough: Annotated[list[Name], Field(max_length=4096, description="Input columns copied to the output beside "
                                                                          "the predictions (ids).")] = []
    predictions: Annotated[
        dict[str, Name],
        Field(max_length=MAX_ITEMS,
              description="Signature output name → output column name. Empty: every signature output under its own "
                          "name."),
    ] = {}
    partition_by: Annotated[list[Name], Field(max_length=64, description="Output columns to partition the files "
                                                                         "by.")] = []
    options: Annotated[dict[str, Value], Field(max_length=64, description="Writer options (e.g. compression: "
                                                                          "zstd).")] = {}
    writer: Annotated[
        Literal["auto", "arrow", "spark"],
        Field(description="auto: Python workers write unpartitioned Parquet themselves with pyarrow (no JVM row "
                          "conversion; attempt-unique files, only the successful attempt's committed); otherwise "
                          "Spark's writer. arrow/spark force one writer."),
    ] = "auto"

    @model_validator(mode="after")
    def _check_writer(self) -> Output:
        if self.writer == "arrow" and (self.format != "parquet" or self.partition_by
                                       or set(self.options) - {"compression"}):
            raise ValueError("output.writer 'arrow' writes unpartitioned Parquet only (options: compression)")
        return self
