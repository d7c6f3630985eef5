"""Where a run's rows come from: Parquet splits the Python workers read themselves, or a Spark reader.

Both give the binding the same schema (the columns and the types Spark would see, partition columns included) and both
hand the scorer Arrow batches; only who reads differs. Spark always schedules, retries and counts the tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tfscore.api.scoringjob import ScoringJob
from tfscore.runtime import arrow_types, errors, splits, storage
from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.scorer import Task, map_spark_batches, map_splits


def wants_arrow_reader(job: ScoringJob) -> bool:
    """Which reader: plain Parquet files with no SQL filter and no reader options are read by the Python workers with
    pyarrow (no JVM row conversion: the fastest path for light models); everything else needs Spark's readers."""
    inp = job.spec.input
    if inp.reader != "auto":
        return inp.reader == "arrow"
    return bool(inp.uri) and inp.resolved_format == "parquet" and not inp.where and not inp.options


@dataclass
class ArrowSplits:
    """Plain Parquet: the driver plans splits from the footers; each task reads its splits with pyarrow."""

    plan: splits.ArrowPlan
    uri: str
    kind: str = "arrow"

    @property
    def schema(self) -> pa.Schema:
        return self.plan.schema

    @property
    def describe(self) -> str:
        return self.uri

    @property
    def expected_rows(self) -> int | None:
        return self.plan.rows  # footers give the exact count: rows read must match it

    @property
    def partitions(self) -> tuple[str, ...]:
        return self.plan.partitions

    @property
    def empty(self) -> bool:
        return not self.plan.files

    def scored(self, spark, task: Task, output_struct):
        n = max(1, len(self.plan.splits))
        ids = spark.range(0, len(self.plan.splits), 1, numPartitions=n)
        return ids.mapInArrow(map_splits(task), output_struct)

    def task_fields(self) -> dict[str, Any]:
        return {"splits": self.plan.splits, "input_schema": self.plan.schema}


@dataclass
class SparkReader:
    """Every other input: Spark's reader (formats, options, where, tables), batches handed to Python by mapInArrow."""

    df: Any
    describe: str
    schema: pa.Schema
    partitions: tuple[str, ...] = ()
    kind: str = "spark"
    expected_rows: int | None = None  # not known without a second pass
    empty: bool = False
    _columns: list[str] = field(default_factory=list)

    def scored(self, spark, task: Task, output_struct):
        from pyspark.sql.functions import col

        # Positional names in, real names back in the worker (scorer.map_spark_batches): PySpark's mapInArrow
        # re-selects its input columns by unquoted name, so `f.1`, `a b` or backticks would not resolve.
        cols = list(task.scoring.read_columns)
        safe = self.df.select(*[col(_quote(c)).alias(f"_c{i}") for i, c in enumerate(cols)])
        return safe.mapInArrow(map_spark_batches(task), output_struct)

    def task_fields(self) -> dict[str, Any]:
        return {}


# What `input.where` may not do: it filters the rows, so subqueries (which read other tables or files) and JVM
# reflection (reflect, java_method, try_reflect: arbitrary static methods) have no business there. Catalyst's classes.
_WHERE_FORBIDDEN = {"ScalarSubquery": "a subquery", "Exists": "a subquery", "ListQuery": "a subquery",
                    "InSubquery": "a subquery", "LateralSubquery": "a subquery",
                    "CallMethodViaReflection": "JVM reflection (reflect, java_method)",
                    "TryReflect": "JVM reflection (try_reflect)"}


def _check_where(df, where: str) -> None:
    """Walk the analyzed filter's expressions (a few nodes) and refuse the forbidden ones by class."""
    plan = df._jdf.queryExecution().analyzed()
    exprs = plan.expressions()
    stack = [exprs.apply(i) for i in range(exprs.size())]
    while stack:
        expr = stack.pop()
        what = _WHERE_FORBIDDEN.get(expr.getClass().getSimpleName())
        if what:
            raise TfscoreError(f"input.where: {where!r} uses {what}; a where filter may only use the input's columns, "
                               "literals and built-in functions")
        children = expr.children()
        stack.extend(children.apply(i) for i in range(children.size()))


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def footer_schema(fs, path: str) -> pa.Schema:
    """The Arrow schema of one Parquet file (the Arrow reader checks the others against the first)."""
    import pyarrow.parquet as pq

    try:
        with fs.open(path, "rb") as fh:
            return pq.ParquetFile(fh).schema_arrow
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, …
        raise TfscoreError(f"input.uri: cannot read Parquet file {storage.with_protocol(fs, path)}: {exc}") from exc


def spark_parquet(spark, uri: str, fs, files: list[str], options: dict[str, str] | None = None):
    """Spark's Parquet reader, made to read what pandas and pyarrow write: TIMESTAMP(NANOS) columns (Spark refuses them)
    are read as longs and turned into microsecond timestamps, floored, as the Arrow path casts them; columns Spark
    cannot read at all (FLOAT16, TIME) are left out of an explicit schema, so they are never read (a job that uses one
    is refused, naming it: arrow_types.check_readable)."""
    from pyspark.sql.functions import expr

    reader = spark.read.format("parquet").options(**(options or {}))
    schema = footer_schema(fs, files[0]) if files else None
    bad = arrow_types.unreadable(schema) if schema is not None else {}
    ns = arrow_types.nanos(schema) if schema is not None else []
    if not bad and not ns:
        return reader.load(storage.spark_uri(uri))
    from pyspark.sql.types import LongType, StructField, StructType

    kept = pa.schema([f for f in schema if f.name not in bad])
    fields = [StructField(f.name, LongType() if f.name in ns else arrow_types.spark_type(f.type, f.name), True)
              for f in kept]
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true" if ns else "false")
    df = reader.schema(StructType(fields)).load(storage.spark_uri(uri))  # partition columns are appended by Spark
    for name in ns:
        q = _quote(name)
        micros = expr(f"timestamp_micros(({q} - pmod({q}, 1000)) div 1000)")
        df = df.withColumn(name, micros if schema.field(name).type.tz else micros.cast("timestamp_ntz"))
    return df


def partition_schema(spark, uri: str, fs, root: str, files: list[str]) -> pa.Schema | None:
    """The partition columns and types Spark infers for `uri`'s `key=value` directories (None: there are none), so the
    Arrow reader types them exactly as Spark's reader does."""
    keys = list(dict.fromkeys(k for f in files for k, _ in splits.partition_pairs(root, f)))
    if not keys:
        return None
    try:
        struct = spark_parquet(spark, uri, fs, files).schema
    except Exception as exc:  # noqa: BLE001 - AnalysisException (conflicting directory structures …)
        raise TfscoreError(f"input.uri: cannot read the partition directories of {uri}: {errors.cause(exc)}") from exc
    schema = arrow_types.arrow_schema(struct)
    return pa.schema([schema.field(k) for k in keys if k in schema.names])


def open_arrow(spark, job: ScoringJob, columns: list[str], parallelism: int, split_rows: int | None) -> ArrowSplits:
    inp, spec = job.spec.input, job.spec
    with storage.storage_errors("input.uri", inp.uri):
        fs, root, files = storage.list_data_files(inp.uri)
        parts = partition_schema(spark, inp.uri, fs, root, files) if splits.has_partitions(root, files) else None
        plan = splits.plan_parquet(inp.uri, columns, parallelism, min_rows=max(spec.batch_size, 65536),
                                   split_rows=split_rows, partition_schema=parts, incremental=inp.incremental,
                                   timezone=arrow_types.TIMEZONE)
    arrow_types.check_readable(columns, plan.schema, inp.uri)
    return ArrowSplits(plan, inp.uri)


def open_spark(spark, job: ScoringJob, columns: list[str]) -> SparkReader:
    inp = job.spec.input
    fmt = inp.resolved_format
    partitions: tuple[str, ...] = ()
    try:
        if fmt == "table":
            df = spark.table(inp.table)
            source = f"table {inp.table}"
        else:
            with storage.storage_errors("input.uri", inp.uri):
                fs, root, files = storage.list_data_files(inp.uri)
            if fmt == "parquet":
                if files:
                    arrow_types.check_readable(columns, footer_schema(fs, files[0]), inp.uri)
                df = spark_parquet(spark, inp.uri, fs, files, inp.options)
            else:
                df = spark.read.format(fmt).options(**inp.options).load(storage.spark_uri(inp.uri))
            source = inp.uri
            if inp.incremental is not None:
                df, partitions = _incremental(spark, df, job, fs, root, files)
        if inp.where:
            df = df.where(inp.where)
            _check_where(df, inp.where)
        schema = arrow_types.arrow_schema(df.schema)  # analysis errors (bad where, unreadable files) surface here
    except TfscoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - AnalysisException & friends
        where = f" where {inp.where!r}" if inp.where else ""
        raise TfscoreError(f"input: cannot read {inp.table or inp.uri} as {fmt}{where}: {errors.cause(exc)}") from exc
    return SparkReader(df, source, schema, partitions)


def _incremental(spark, df, job: ScoringJob, fs, root: str, files: list[str]):
    """Only the partitions in (after, until]: the same selection as the Arrow reader's (splits.plan_parquet), applied to
    Spark's reader as a filter on the partition column (which Spark prunes to those directories)."""
    from pyspark.sql.functions import col, lit

    inp = job.spec.input
    parts = partition_schema(spark, inp.uri, fs, root, files)
    fields = {f.name: f for f in parts} if parts is not None else {}
    key, after, until = splits.incremental_range(inp.incremental, fields, inp.uri, arrow_types.TIMEZONE)
    chosen = splits.select(splits.keyed_files(root, files, fields, arrow_types.TIMEZONE), key, after, until)
    column = col(_quote(key))
    df = df.where(column.isNotNull())
    if after is not None:
        df = df.where(column > lit(after))
    if until is not None:
        df = df.where(column <= lit(until))
    return df, splits.partition_dirs(root, chosen)
