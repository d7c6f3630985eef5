"""A task's prediction statistics: one `ColumnSketch` (runtime/stats.py) per prediction column, or per element of a
small list column, updated per output batch on the executor, merged by the driver, and small on the wire (it travels
in the task report).

Which sketches a column gets is decided once, from the signature output's static shape (`element_width`), never from
the data, so every task of a run sketches a column the same way and their sketches merge:
- a scalar output ([None] or [None, 1]): one sketch named like the column;
- a fixed [None, k] output with 2 <= k <= MAX_ELEMENTS: one sketch per element, `col[0]` … `col[k-1]`, so a small
  classifier's class probabilities stay apart;
- anything else (wider, variable, or more than one inner dimension): one sketch of all values, flattened; per-element
  statistics of an embedding are neither small nor readable.
The scorer builds it as `BatchStats({o.column: element_width(o.tensor.inner_shape) for o in binding.outputs
if sketchable(o.arrow_type)})`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tfscore.api.statistics import MAX_ELEMENTS
from tfscore.runtime.stats import ALPHA, MAX_BUCKETS, WIRE_VERSION, ColumnSketch, mantissa_bits


def element_width(inner_shape: tuple[int | None, ...]) -> int | None:
    """k: one sketch per element of a fixed [None, k] output (2 <= k <= MAX_ELEMENTS); None: one sketch (a scalar, or
    a list column flattened). `inner_shape` is the signature output's shape after the batch dimension."""
    if len(inner_shape) == 1 and inner_shape[0] is not None and 2 <= inner_shape[0] <= MAX_ELEMENTS:
        return int(inner_shape[0])
    return None


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def sketchable(arrow_type: pa.DataType) -> bool:
    """A prediction column BatchStats can sketch: numeric or boolean, or lists of them (strings are not)."""
    while _is_list(arrow_type):
        arrow_type = arrow_type.value_type
    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type)


class BatchStats:
    """The sketches of a task's prediction columns, updated per output batch; merged by the driver.

    `columns` maps each prediction column to its `element_width` (None: one sketch named like the column). Sketches
    exist from the start, so a task that scored nothing still reports zero counts for every column. Batches smaller
    than FLUSH_ROWS are buffered (their prediction columns only) and sketched together: a sketch update costs a few
    dozen numpy calls whatever its size, which at the default 4096-row batches would double its cost per row.
    `sketches`, `merge`, `summary` and `to_wire` flush first.
    """

    FLUSH_ROWS = 65_536

    def __init__(self, columns: Mapping[str, int | None], alpha: float = ALPHA, max_buckets: int = MAX_BUCKETS):
        self.widths: dict[str, int | None] = {}
        self._sketches: dict[str, ColumnSketch] = {}
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._checked: pa.Schema | None = None  # the last schema checked: every batch of a task has the same one
        self.bits, self.max_buckets = mantissa_bits(alpha), max_buckets
        for name, width in columns.items():
            self._declare(name, width)

    def _declare(self, name: str, width: int | None) -> None:
        if width is not None and not 2 <= width <= MAX_ELEMENTS:
            raise ValueError(f"prediction column {name!r}: element width {width} is not in 2..{MAX_ELEMENTS}")
        if name in self.widths:
            if self.widths[name] != width:
                raise ValueError(f"prediction column {name!r}: sketched with element width {self.widths[name]} in "
                                 f"one task and {width} in another")
            return
        self.widths[name] = width
        self._checked = None
        for key in [name] if width is None else [f"{name}[{j}]" for j in range(width)]:
            self._sketches[key] = ColumnSketch(max_buckets=self.max_buckets, bits=self.bits)

    @property
    def sketches(self) -> dict[str, ColumnSketch]:
        self.flush()
        return self._sketches

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Add one output batch (the prediction columns are read by name; other columns are ignored)."""
        if self._checked is None or not batch.schema.equals(self._checked):
            self._check(batch.schema)
        selected = batch.select(list(self.widths))
        self._pending.extend(selected.to_batches() if isinstance(selected, pa.Table) else [selected])
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.FLUSH_ROWS:
            self.flush()

    def _check(self, schema: pa.Schema) -> None:
        for name, width in self.widths.items():
            if name not in schema.names:
                raise ValueError(f"prediction column {name!r} is not in the output batch "
                                 f"(columns: {', '.join(schema.names)})")
            t = schema.field(name).type
            if width is not None and not _is_list(t):
                raise ValueError(f"prediction column {name!r} is {t}, not a list of {width} values per row")
            if not sketchable(t):
                raise ValueError(f"prediction column {name!r} is {t}: only numeric and boolean columns are sketched")
        self._checked = schema

    def flush(self) -> None:
        """Sketch the buffered batches."""
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        table = pa.Table.from_batches(pending).combine_chunks()
        for name, width in self.widths.items():
            column = table.column(name)
            if width is None:
                self._sketches[name].update(column)
            else:
                for chunk in column.chunks:
                    self._update_elements(name, width, chunk)

    def _update_elements(self, name: str, width: int, column: pa.Array) -> None:
        lengths = pc.min_max(pc.list_value_length(column)).as_py()
        if lengths["min"] is not None and (lengths["min"], lengths["max"]) != (width, width):
            raise ValueError(f"prediction column {name!r}: rows hold {lengths['min']}..{lengths['max']} values, "
                             f"expected {width} per row")
        for j in range(width):  # null rows give null elements: one null per element sketch
            self._sketches[f"{name}[{j}]"].update(pc.list_element(column, j))

    def merge(self, other: BatchStats) -> BatchStats:
        """Add `other` into this one (in place; columns are the union); returns self."""
        self.flush()
        for name, width in other.widths.items():
            self._declare(name, width)
        for key, sketch in other.sketches.items():
            self._sketches[key].merge(sketch)
        return self

    def summary(self) -> dict[str, dict[str, Any]]:
        """{sketch name: ColumnStatistics wire form}."""
        return {key: sketch.summary() for key, sketch in self.sketches.items()}

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "columns": dict(self.widths),
                "sketches": {key: sketch.to_wire() for key, sketch in self.sketches.items()}}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any], where: str = "statistics") -> BatchStats:
        if not isinstance(wire, Mapping) or wire.get("v") != WIRE_VERSION:
            raise ValueError(f"{where}: not a statistics record of format version {WIRE_VERSION}")
        columns, sketches = wire.get("columns"), wire.get("sketches")
        if not isinstance(columns, Mapping) or not isinstance(sketches, Mapping):
            raise ValueError(f"{where}: want 'columns' and 'sketches' objects")
        read = {key: ColumnSketch.from_wire(value, f"{where}.sketches.{key}") for key, value in sketches.items()}
        first = next(iter(read.values()), None)
        stats = cls({}, max_buckets=first.max_buckets if first else MAX_BUCKETS)
        stats.bits = first.bits if first else stats.bits
        for name, width in columns.items():
            if width is not None and (not isinstance(width, int) or isinstance(width, bool)):
                raise ValueError(f"{where}.columns.{name}: want null or an element count, got {width!r}")
            stats._declare(name, width)
        if set(read) != set(stats._sketches):
            raise ValueError(f"{where}: sketches {sorted(read)} do not match columns {sorted(stats._sketches)}")
        for key, sketch in read.items():
            stats._sketches[key].merge(sketch)
        return stats
