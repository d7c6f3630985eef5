"""The columns a run outputs, as Spark holds them: one Arrow type per column, whichever reader and writer run.

The Arrow reader sees a Parquet file's own types (timestamp[ns] from pandas, dictionary from a pandas category,
large_string, unsigned integers …); Spark's reader sees Spark's. So that both paths yield the same columns, types and
values, every passthrough column is cast to the Arrow type of its Spark type before it is written, by either writer:
the writer Spark feeds from Python gets exactly the Arrow types its declared schema expects (else `UNSUPPORTED_ARROWTYPE`
or `getLong` errors), and the Arrow writer writes the same types.

The mapping is Spark's own (pyspark.sql.pandas.types), after the conversions Spark's Parquet reader makes for types the
Arrow→Spark converter refuses: unsigned integers widen (uint8→int16, uint16→int32, uint32→int64, uint64→decimal(20,0)),
date64 becomes date32, nanosecond timestamps (pandas writes them) become microseconds, floored, as Spark reads them.
Timestamps keep whether they have a time zone (tz-aware → UTC instants, Spark's TimestampType; naive →
TimestampNTZType). A type Spark cannot hold or read fails before any work with one sentence naming the column.
"""

from __future__ import annotations

import pyarrow as pa

from tfscore.runtime.errors import TfscoreError

TIMEZONE = "UTC"  # spark.sql.session.timeZone of every run: the same instants on every host


def _widened(t: pa.DataType) -> pa.DataType:
    """Types Spark's Parquet reader converts before Spark sees them (ParquetSchemaConverter's unsigned/half rules)."""
    if pa.types.is_dictionary(t):
        return _widened(t.value_type)
    if pa.types.is_uint8(t):
        return pa.int16()
    if pa.types.is_uint16(t):
        return pa.int32()
    if pa.types.is_uint32(t):
        return pa.int64()
    if pa.types.is_uint64(t):
        return pa.decimal128(20, 0)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(pa.field(t.value_field.name, _widened(t.value_type), t.value_field.nullable))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _widened(f.type), f.nullable) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_widened(t.key_type), _widened(t.item_type))
    return t


def unreadable(schema: pa.Schema) -> dict[str, str]:
    """Parquet columns Spark's reader cannot read at all (PARQUET_TYPE_ILLEGAL / UNSUPPORTED_TIME_TYPE), with why. A job
    that uses one fails on both readers with the same sentence; a column it does not use is simply never read."""
    out = {}
    for f in schema:
        t = f.type
        while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            t = t.value_type
        if pa.types.is_float16(t):
            out[f.name] = "a half-precision float (Parquet FLOAT16)"
        elif pa.types.is_time(t):
            out[f.name] = "a time of day (Parquet TIME)"
    return out


def nanos(schema: pa.Schema) -> list[str]:
    """Top-level timestamp[ns] columns: Spark's Parquet reader refuses TIMESTAMP(NANOS) unless it reads them as longs."""
    return [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]


def check_readable(columns: list[str], schema: pa.Schema, where: str) -> None:
    """One sentence naming the first column the job uses that Spark's reader could not read (so neither reader does)."""
    bad = unreadable(schema)
    for c in columns:
        if c in bad:
            raise TfscoreError(f"input.uri: column {c!r} of {where} is {bad[c]}, which Spark cannot read; convert it "
                               "(e.g. to float32 or a string) or leave it out of output.passthrough and input.columns")


def spark_type(t: pa.DataType, column: str):
    """The Spark type a column of Arrow type `t` is held as, or one sentence naming the column."""
    from pyspark.sql.pandas.types import from_arrow_type

    try:
        spark = from_arrow_type(_widened(t))
    except Exception as exc:  # noqa: BLE001 - PySparkTypeError, ValueError (decimal precision > 38), …
        raise TfscoreError(f"column {column!r} has type {t}, which Spark cannot hold ({str(exc).splitlines()[0][:120]}); "
                           "drop it from output.passthrough or convert it in the data") from None
    if type(spark).__name__ == "NullType":
        raise TfscoreError(f"column {column!r} holds only nulls (type null), which Spark cannot write; drop it from "
                           "output.passthrough")
    return spark


def spark_schema(schema: pa.Schema):
    """The Spark StructType for `schema` (one sentence naming the first column Spark cannot hold)."""
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(f.name, spark_type(f.type, f.name), f.nullable) for f in schema])


def held_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with every column in the Arrow type of its Spark type (what both writers write)."""
    from pyspark.sql.pandas.types import to_arrow_type

    return pa.schema([pa.field(f.name, to_arrow_type(spark_type(f.type, f.name), timezone=TIMEZONE), f.nullable)
                      for f in schema])


def arrow_schema(spark_struct) -> pa.Schema:
    """The Arrow schema Spark hands Python for a DataFrame of `spark_struct` (in the runs' session time zone)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(spark_struct, timezone=TIMEZONE)


def cast(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """`batch` in exactly the types of `target` (same column order); a no-op when they already match."""
    if batch.schema.equals(target, check_metadata=False):
        return batch
    columns = []
    for array, f in zip(batch.columns, target, strict=True):
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if pa.types.is_timestamp(array.type) and array.type.unit == "ns" and pa.types.is_timestamp(f.type):
            import pyarrow.compute as pc

            array = pc.floor_temporal(array, unit="microsecond")  # to the microsecond below, as Spark's reader does
        columns.append(array if array.type.equals(f.type) else array.cast(f.type, safe=False))
    return pa.RecordBatch.from_arrays(columns, schema=target)
