"""The Arrow reader's plan: Parquet footers → splits of row groups, Hive partition directories → constant columns.

The driver reads only footers (row groups, schema, a corrupt file named here, before any work) and groups row groups
into splits sized for two waves of tasks. Partition directories (`in/dt=2026-11-01/part.parquet`) become columns the
way Spark's reader makes them: the partition column types are Spark's own inference (the caller passes the schema Spark
inferred, so both readers see the same types), values are unescaped like Hive paths, `__HIVE_DEFAULT_PARTITION__` is null.
An incremental run keeps only the partitions whose value lies in (after, until].
"""

from __future__ import annotations

import datetime as dt
import decimal
import posixpath
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from tfscore.runtime import storage
from tfscore.runtime.errors import TfscoreError

DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True)
class Split:
    """Row groups of one Parquet file that one task reads, and the file's partition values."""

    index: int
    uri: str  # fsspec-openable
    row_groups: tuple[int, ...]
    rows: int
    first_row: int = 0  # the file row number of the split's first row (for error messages)
    partition: tuple[tuple[str, object], ...] = ()  # (column, typed value) of the file's partition directories


@dataclass(frozen=True)
class ArrowPlan:
    splits: tuple[Split, ...]
    schema: pa.Schema  # the files' columns, then the partition columns
    rows: int
    files: int
    partitions: tuple[str, ...] = ()  # the partition directories read, e.g. "dt=2026-11-01" (for the result)


# ---------------------------------------------------------------- partition directories


def partition_pairs(root: str, path: str) -> list[tuple[str, str]]:
    """[(key, raw value)] of the `key=value` directories between `root` and the file `path`."""
    rel = posixpath.relpath(posixpath.dirname(path), root)
    if rel in (".", ""):
        return []
    return [tuple(part.split("=", 1)) for part in rel.split("/") if "=" in part]  # type: ignore[misc]


def has_partitions(root: str, files: Sequence[str]) -> bool:
    return any(partition_pairs(root, f) for f in files)


def typed_value(raw: str, type_: pa.DataType, timezone: str = "UTC") -> object:
    """A partition directory's value as a Python value of the Arrow type Spark inferred for its column."""
    text = unquote(raw)  # Hive escapes special characters in partition paths as %XX
    if text == DEFAULT_PARTITION:
        return None
    if pa.types.is_integer(type_):
        return int(text)
    if pa.types.is_floating(type_):
        return float(text)
    if pa.types.is_decimal(type_):
        return decimal.Decimal(text)
    if pa.types.is_date(type_):
        return dt.date.fromisoformat(text)
    if pa.types.is_timestamp(type_):
        value = dt.datetime.fromisoformat(text)
        if type_.tz is not None and value.tzinfo is None:
            from zoneinfo import ZoneInfo

            value = value.replace(tzinfo=ZoneInfo(timezone))
        return value
    if pa.types.is_boolean(type_):
        return text.lower() == "true"
    return text


def in_range(value: object, after: object, until: object) -> bool:
    """(after, until]; a null partition value is never in an incremental range."""
    if value is None:
        return False
    return (after is None or value > after) and (until is None or value <= until)


def _partition_fields(partition_schema: pa.Schema | None, keys: list[str]) -> dict[str, pa.Field]:
    if partition_schema is None:
        return {k: pa.field(k, pa.string()) for k in keys}
    return {f.name: f for f in partition_schema}


# ---------------------------------------------------------------- planning (driver)


def plan_parquet(uri: str, columns: list[str], parallelism: int, min_rows: int, split_rows: int | None = None,
                 partition_schema: pa.Schema | None = None, incremental=None, timezone: str = "UTC") -> ArrowPlan:
    """Footers only: the row groups of every file, grouped into splits; corrupt files named here, before any work.

    `partition_schema`: the partition columns and types Spark inferred (None: no partition directories).
    `incremental`: api Incremental (partitionKey, after, until) — only files under partitions in (after, until]."""
    fs, root, files = storage.list_data_files(uri)
    fields = _partition_fields(partition_schema, sorted({k for f in files for k, _ in partition_pairs(root, f)}))
    keyed = keyed_files(root, files, fields, timezone)
    if incremental is not None:
        keyed = select(keyed, *incremental_range(incremental, fields, uri, timezone))
    partitions = partition_dirs(root, keyed)

    def footer(path: str):
        try:
            with fs.open(path, "rb") as fh:
                md = pq.ParquetFile(fh).metadata
                return path, md, md.schema.to_arrow_schema()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, …
            raise TfscoreError(f"input.uri: cannot read Parquet file {storage.with_protocol(fs, path)}: {exc}") from exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        footers = list(pool.map(footer, [f for f, _ in keyed]))
    part_fields = [fields[k] for k in fields]
    if not footers:  # nothing selected (an incremental run with nothing new): the columns still come from a file
        schema = footer(files[0])[2] if files else pa.schema([])
        return ArrowPlan((), pa.schema([*[f for f in schema if f.name not in fields], *part_fields]), 0, 0, partitions)
    schema = footers[0][2]
    for path, _, other in footers[1:]:
        for c in columns:
            if c in schema.names and (c not in other.names or other.field(c).type != schema.field(c).type):
                got = other.field(c).type if c in other.names else "missing"
                raise TfscoreError(f"input.uri: column {c!r} is {schema.field(c).type} in "
                                   f"{storage.with_protocol(fs, footers[0][0])} but {got} in "
                                   f"{storage.with_protocol(fs, path)}")
    schema = pa.schema([*[f for f in schema if f.name not in fields], *part_fields])
    total = sum(md.num_rows for _, md, _ in footers)
    # Two waves of tasks: every core busy, some slack for uneven tasks, few enough that per-task overhead stays small.
    target = split_rows or max(min_rows, min(4_000_000, total // max(1, parallelism * 2) + 1))
    splits: list[Split] = []
    for (path, md, _), (_, pairs) in zip(footers, keyed, strict=True):
        groups: list[int] = []
        rows = start = 0
        uri_of = storage.with_protocol(fs, path)
        for g in range(md.num_row_groups):
            n = md.row_group(g).num_rows
            if groups and rows + n > target:
                splits.append(Split(len(splits), uri_of, tuple(groups), rows, start, pairs))
                groups, start, rows = [], start + rows, 0
            groups.append(g)
            rows += n
        if groups:
            splits.append(Split(len(splits), uri_of, tuple(groups), rows, start, pairs))
    return ArrowPlan(tuple(splits), schema, total, len(footers), partitions)


Keyed = list[tuple[str, tuple[tuple[str, object], ...]]]


def keyed_files(root: str, files: list[str], fields: dict[str, pa.Field], timezone: str) -> Keyed:
    """Each file with its typed partition values."""
    return [(f, tuple((k, typed_value(v, fields[k].type, timezone)) for k, v in partition_pairs(root, f) if k in fields))
            for f in files]


def partition_dirs(root: str, keyed: Keyed) -> tuple[str, ...]:
    """The partition directories (relative to the root) the files lie in, sorted."""
    return tuple(sorted({posixpath.relpath(posixpath.dirname(f), root) for f, p in keyed if p}))


def incremental_range(incremental, fields: dict[str, pa.Field], uri: str, timezone: str) -> tuple[str, object, object]:
    """(partition key, typed after, typed until) of an api Incremental, or one sentence naming the field."""
    key = incremental.partition_key
    if key not in fields:
        raise TfscoreError(f"input.incremental.partitionKey: {uri} has no partition directories named {key}=… "
                           f"(found: {', '.join(fields) or 'none'})")
    type_ = fields[key].type
    bounds = []
    for name in ("after", "until"):
        raw = getattr(incremental, name)
        try:
            bounds.append(None if raw is None else typed_value(raw, type_, timezone))
        except ValueError:
            raise TfscoreError(f"input.incremental.{name}: {raw!r} is not a value of partition column {key} "
                               f"({type_})") from None
    return key, bounds[0], bounds[1]


def select(keyed: Keyed, key: str, after: object, until: object) -> Keyed:
    """The files whose partition `key` lies in (after, until]."""
    return [(f, pairs) for f, pairs in keyed if in_range(dict(pairs).get(key), after, until)]


# ---------------------------------------------------------------- reading (Python workers)


def read_split(split: Split, columns: list[str], batch_size: int, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Stream a split as record batches, one row group at a time: memory is bounded by a row group, not the split.

    (Given all the split's row groups at once, pyarrow pre-buffers every one of them before the first batch.) Within a
    row group the column chunks are fetched with coalesced reads, which is what object stores want. Partition columns
    asked for are added as constant columns of the split's values."""
    parts = dict(split.partition)
    file_columns = [c for c in columns if c not in parts]
    fs, path = storage.filesystem(split.uri, "input.uri")
    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh, buffer_size=1 << 20)
        for group in split.row_groups:
            for batch in pf.iter_batches(batch_size=batch_size, row_groups=[group], columns=file_columns,
                                         use_threads=False):
                if parts:
                    arrays = {c: batch.column(c) for c in file_columns}
                    for c in columns:
                        if c in parts:
                            arrays[c] = pa.array([parts[c]] * batch.num_rows, type=schema.field(c).type)
                    batch = pa.RecordBatch.from_arrays([arrays[c] for c in columns], names=list(columns))
                yield batch
