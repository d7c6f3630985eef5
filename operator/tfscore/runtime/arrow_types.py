"""The columns a run outputs, as Spark holds them: one Arrow type per column, whichever reader and writer run.

The Arrow reader sees a Parquet file's own types (timestamp[ns] from pandas, dictionary from a pandas category,
large_string, unsigned integers …); Spark's reader sees Spark's. So that both paths yield the same columns, types and
values, every passthrough column is cast to the Arrow type of its Spark type before it is written, by either writer:
the writer Spark feeds from Python gets exactly the Arrow types its declared schema expects (else `UNSUPPORTED_ARROWTYPE`
or `getLong` errors), and the Arrow writer writes the same types.

The mapping is Spark's own (pyspark.sql.pandas.types), after the conversions Spark's Parquet reader makes for types the
Arrow→Spark converter refuses: unsigned integers widen (uint8→int16, uint16→int32, uint32→int64, uint64→decimal(20,0)),
half floats become float32, date64 becomes date32. Timestamps keep whether they have a time zone (tz-aware → UTC
instants, Spark's TimestampType; naive → TimestampNTZType) at microsecond precision, as Spark stores them. A type Spark
cannot hold at all fails before any work with one sentence naming the column.
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
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(pa.field(t.value_field.name, _widened(t.value_type), t.value_field.nullable))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _widened(f.type), f.nullable) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_widened(t.key_type), _widened(t.item_type))
    return t


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
        columns.append(array if array.type.equals(f.type) else array.cast(f.type, safe=False))
    return pa.RecordBatch.from_arrays(columns, schema=target)
