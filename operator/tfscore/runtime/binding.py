"""Columns ↔ tensors, with no user code.

`bind` checks, once on the driver, that every signature input can be fed from the input schema (and how), and fixes the
output schema. `Binding.to_tensors` turns an Arrow record batch into numpy arrays (zero-copy where Arrow allows), after
`Binding.validate` has found the rows that cannot be scored (nulls, wrong array lengths, out-of-range integers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.model import Signature, TensorInfo

REASON_COLUMN = "_tfscore_reason"

_NUMERIC_SIG = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                "uint64", "bool"}
_INT_SIG = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}

# Signature output dtype → Arrow type Spark can hold.
_OUT_ARROW = {
    "float16": pa.float32(), "float32": pa.float32(), "float64": pa.float64(),
    "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
    "uint8": pa.int16(), "uint16": pa.int32(), "uint32": pa.int64(), "uint64": pa.int64(),
    "bool": pa.bool_(), "string": pa.string(),
}


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _leaf_type(t: pa.DataType) -> pa.DataType:
    while _is_list(t):
        t = t.value_type
    return t


def _castable(leaf: pa.DataType, sig_dtype: str) -> bool:
    if sig_dtype == "string":
        return pa.types.is_string(leaf) or pa.types.is_large_string(leaf) or pa.types.is_binary(leaf) \
            or pa.types.is_large_binary(leaf)
    if sig_dtype in _INT_SIG:
        # float → int would silently truncate: refuse; wider ints are range-checked per row.
        return pa.types.is_integer(leaf) or pa.types.is_boolean(leaf)
    if sig_dtype in _NUMERIC_SIG:
        return pa.types.is_integer(leaf) or pa.types.is_floating(leaf) or pa.types.is_boolean(leaf) \
            or pa.types.is_decimal(leaf)
    return False


def _shape_text(t: TensorInfo) -> str:
    return t.describe().split(": ", 1)[1]


@dataclass(frozen=True)
class InputBinding:
    tensor: TensorInfo
    columns: tuple[str, ...]
    kind: str  # "scalar" (one scalar column), "stack" (k scalar columns → [N, k]), "array" (one list column, reshaped)

    @property
    def np_dtype(self):
        return object if self.tensor.dtype == "string" else np.dtype(self.tensor.dtype)

    def target_shape(self, n: int) -> tuple[int, ...]:
        inner = self.tensor.inner_shape
        if self.kind == "stack":
            return (n, len(self.columns))
        if self.kind == "scalar":
            return (n,) + tuple(1 for _ in inner)
        return (n,) + tuple(-1 if d is None else d for d in inner)


@dataclass(frozen=True)
class OutputBinding:
    tensor: TensorInfo
    column: str
    is_list: bool

    @property
    def arrow_type(self) -> pa.DataType:
        leaf = _OUT_ARROW[self.tensor.dtype]
        return pa.list_(leaf) if self.is_list else leaf


@dataclass(frozen=True)
class Binding:
    inputs: tuple[InputBinding, ...]
    outputs: tuple[OutputBinding, ...]
    passthrough: tuple[str, ...]
    passthrough_fields: tuple[pa.Field, ...]

    @property
    def read_columns(self) -> list[str]:
        """Every input column the job reads, in a stable order, each once."""
        seen: dict[str, None] = {}
        for c in self.passthrough:
            seen[c] = None
        for b in self.inputs:
            for c in b.columns:
                seen[c] = None
        return list(seen)

    def output_schema(self) -> pa.Schema:
        return pa.schema(list(self.passthrough_fields) + [pa.field(o.column, o.arrow_type) for o in self.outputs])

    # ------------------------------------------------------------ per batch

    def validate(self, batch: pa.RecordBatch) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(invalid mask, reason per row) — (None, None) when every row can be scored (the fast, common case)."""
        n = batch.num_rows
        invalid: np.ndarray | None = None
        reasons: np.ndarray | None = None

        def flag(mask: np.ndarray, reason: str) -> None:
            nonlocal invalid, reasons
            mask = np.asarray(mask, dtype=bool)
            if not mask.any():
                return
            if invalid is None:
                invalid = np.zeros(n, dtype=bool)
                reasons = np.full(n, None, dtype=object)
            fresh = mask & ~invalid
            reasons[fresh] = reason
            invalid |= mask

        for b in self.inputs:
            for col in b.columns:
                arr = batch.column(col)
                nulls = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
                if nulls is not None:
                    flag(nulls, f"column {col!r} is null")
                lengths = values = None
                if b.kind == "array":
                    lengths, values = _row_lengths(arr)
                    if values.null_count:
                        flag(_rows_where(lengths, values.is_null().to_numpy(zero_copy_only=False)),
                             f"column {col!r} has null elements")
                    want = b.tensor.row_size
                    if want is None:  # unknown inner size: rows must agree with each other
                        ok = lengths[~nulls] if nulls is not None else lengths
                        want = int(ok[0]) if len(ok) else 0
                    bad = lengths != want
                    if nulls is not None:
                        bad &= ~nulls
                    if bad.any():
                        first = int(lengths[np.argmax(bad)])
                        flag(bad, f"column {col!r} has {first} values per row; signature input {b.tensor.name!r} "
                                  f"wants {want} (shape {_shape_text(b.tensor)})")
                if b.tensor.dtype in _INT_SIG:
                    flag(_out_of_range(arr, b.tensor.dtype, lengths, values),
                         f"column {col!r} has values outside {b.tensor.dtype}'s range")
        return invalid, reasons

    def to_tensors(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        """Numpy arrays for the signature call. Assumes `validate` found no invalid rows in `batch`."""
        n = batch.num_rows
        out: dict[str, np.ndarray] = {}
        for b in self.inputs:
            if b.kind == "stack":
                mat = np.empty((n, len(b.columns)), dtype=b.np_dtype)
                for j, col in enumerate(b.columns):
                    mat[:, j] = _to_numpy(batch.column(col), b.np_dtype)
                out[b.tensor.name] = mat
            elif b.kind == "scalar":
                out[b.tensor.name] = _to_numpy(batch.column(b.columns[0]), b.np_dtype).reshape(b.target_shape(n))
            else:
                values = _leaf_values(batch.column(b.columns[0]))
                out[b.tensor.name] = _to_numpy(values, b.np_dtype).reshape(b.target_shape(n))
        return out

    def to_output(self, batch: pa.RecordBatch, results: Mapping[str, np.ndarray]) -> pa.RecordBatch:
        """Passthrough columns of `batch` beside the prediction columns."""
        n = batch.num_rows
        arrays = [batch.column(c) for c in self.passthrough]
        for o in self.outputs:
            value = np.asarray(results[o.tensor.name])
            if value.shape[:1] != (n,):
                raise TfscoreError(f"model: signature output {o.tensor.name!r} returned {value.shape[:1]} rows for a "
                                   f"batch of {n}")
            leaf = _OUT_ARROW[o.tensor.dtype]
            if o.is_list:
                flat = value.reshape(n, -1)
                width = flat.shape[1]
                values = _from_numpy(flat.reshape(-1), leaf)
                offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
                arrays.append(pa.ListArray.from_arrays(offsets, values))
            else:
                arrays.append(_from_numpy(value.reshape(n), leaf))
        return pa.RecordBatch.from_arrays(arrays, schema=self.output_schema())


def _to_numpy(arr: pa.Array, dtype) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if dtype is object:
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
    if pa.types.is_decimal(t):
        arr = pc.cast(arr, pa.float64())
    if pa.types.is_boolean(t):
        return arr.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return arr.to_numpy(zero_copy_only=arr.null_count == 0).astype(dtype, copy=False)


def _from_numpy(values: np.ndarray, leaf: pa.DataType) -> pa.Array:
    if pa.types.is_string(leaf):
        return pa.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values],
                        type=pa.string())
    return pa.array(values.astype(leaf.to_pandas_dtype(), copy=False), type=leaf)


def _leaf_values(arr: pa.Array) -> pa.Array:
    """The flat leaf values of a (nested) list column, in row order (no copies)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    while _is_list(arr.type):
        arr = arr.flatten()
    return arr


def _row_lengths(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Elements per row (all nesting levels flattened) and the flat leaf values of a list column."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if pa.types.is_fixed_size_list(arr.type) and not arr.null_count:
        lengths = np.full(n, arr.type.list_size, dtype=np.int64)
    else:
        lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = arr.flatten()
    while _is_list(values.type):
        # Nested lists: the inner lengths add up per outer row.
        inner = pc.fill_null(pc.list_value_length(values), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        owner = np.repeat(np.arange(n), lengths)
        lengths = np.bincount(owner, weights=inner, minlength=n).astype(np.int64)
        values = values.flatten()
    return lengths, values


def _rows_where(lengths: np.ndarray, leaf_mask: np.ndarray) -> np.ndarray:
    """Rows of a list column that hold at least one leaf value where `leaf_mask` is true."""
    mask = np.zeros(len(lengths), dtype=bool)
    mask[np.repeat(np.arange(len(lengths)), lengths)[leaf_mask]] = True
    return mask


def _out_of_range(arr: pa.Array, sig_dtype: str, lengths: np.ndarray | None = None,
                  values: pa.Array | None = None) -> np.ndarray:
    """Rows with an integer outside `sig_dtype`'s range (`lengths`/`values`: a list column's, when already known)."""
    leaf = _leaf_type(arr.type)
    if not pa.types.is_integer(leaf):
        return np.zeros(len(arr), dtype=bool)
    info = np.iinfo(np.dtype(sig_dtype))
    src = np.iinfo(np.dtype(leaf.to_pandas_dtype()))
    if src.min >= info.min and src.max <= info.max:
        return np.zeros(len(arr), dtype=bool)
    if _is_list(arr.type):
        if lengths is None or values is None:
            lengths, values = _row_lengths(arr)
        v = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)
        return _rows_where(lengths, (v < info.min) | (v > info.max))
    v = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
    return (v < info.min) | (v > info.max)


# ---------------------------------------------------------------- planning (driver)


def check_column_keys(signature: Signature, columns: Mapping[str, object], field: str = "input.columns") -> None:
    """Every key of a column mapping names an input of the signature."""
    for key in columns:
        if key not in signature.inputs:
            raise TfscoreError(f"{field}: {key!r} is not an input of signature {signature.name!r} "
                               f"(inputs: {', '.join(t.describe() for t in signature.inputs.values())})")


def bind(
    signature: Signature,
    schema: pa.Schema,
    columns: Mapping[str, str | list[str]],
    passthrough: list[str] | tuple[str, ...],
    predictions: Mapping[str, str],
    source: str,
) -> Binding:
    """Decide how each signature input is fed from `schema`, or raise naming the field, column and `source`."""
    names = schema.names
    check_column_keys(signature, columns)

    def need(col: str, what: str) -> pa.Field:
        if col not in names:
            raise TfscoreError(f"{what}: column {col!r} not found in {source} (columns: {', '.join(names)})")
        return schema.field(col)

    inputs = []
    for name, tensor in signature.inputs.items():
        src = columns.get(name, name)
        what = f"input.columns.{name}" if name in columns else f"signature input {name!r}"
        cols = tuple(src) if isinstance(src, list) else (src,)
        if not cols:
            raise TfscoreError(f"input.columns.{name}: empty column list")
        fields = [need(c, what) for c in cols]
        inner = tensor.inner_shape
        for f in fields:
            leaf = _leaf_type(f.type)
            if not _castable(leaf, tensor.dtype):
                raise TfscoreError(f"{what}: column {f.name!r} is {f.type}, which cannot be cast to signature input "
                                   f"{name!r} ({tensor.describe()})")
        if isinstance(src, list):
            if any(_is_list(f.type) for f in fields):
                raise TfscoreError(f"{what}: a list of columns must hold scalar columns; "
                                   f"{[f.name for f in fields if _is_list(f.type)]} are arrays")
            if tensor.shape is not None and (len(tensor.shape) != 2 or inner[0] not in (None, len(cols))):
                raise TfscoreError(f"{what}: {len(cols)} columns stack into [None, {len(cols)}], but signature input "
                                   f"{name!r} has shape {_shape_text(tensor)}")
            inputs.append(InputBinding(tensor, cols, "stack"))
        elif _is_list(fields[0].type):
            size = tensor.row_size
            fixed = fields[0].type.list_size if pa.types.is_fixed_size_list(fields[0].type) else None
            if size is not None and fixed is not None and fixed != size:
                raise TfscoreError(f"{what}: column {cols[0]!r} holds {fixed} values per row, signature input "
                                   f"{name!r} wants {size} (shape {_shape_text(tensor)})")
            if tensor.shape is not None and len(tensor.shape) < 2:
                raise TfscoreError(f"{what}: column {cols[0]!r} is an array, signature input {name!r} wants one value "
                                   f"per row (shape {_shape_text(tensor)})")
            if sum(d is None for d in inner) > 1:
                raise TfscoreError(f"signature input {name!r} has more than one unknown inner dimension "
                                   f"({_shape_text(tensor)}); tfscore cannot reshape a flat array into it")
            inputs.append(InputBinding(tensor, cols, "array"))
        else:
            if tensor.shape is not None and any(d not in (1,) for d in inner):
                raise TfscoreError(f"{what}: column {cols[0]!r} is a scalar, signature input {name!r} wants shape "
                                   f"{_shape_text(tensor)}; map it to an array column or a list of columns")
            inputs.append(InputBinding(tensor, cols, "scalar"))

    for key in predictions:
        if key not in signature.outputs:
            raise TfscoreError(f"output.predictions: {key!r} is not an output of signature {signature.name!r} "
                               f"(outputs: {', '.join(t.describe() for t in signature.outputs.values())})")
    chosen = predictions or {k: k for k in signature.outputs}
    outputs = []
    for key, col in chosen.items():
        tensor = signature.outputs[key]
        if tensor.dtype not in _OUT_ARROW:
            raise TfscoreError(f"output.predictions.{key}: signature output dtype {tensor.dtype} is not supported")
        is_list = tensor.shape is None or any(d != 1 for d in tensor.inner_shape)
        outputs.append(OutputBinding(tensor, col, is_list))

    pass_fields = tuple(need(c, "output.passthrough") for c in passthrough)
    clash = {c for c in passthrough} & {o.column for o in outputs}
    if clash:
        raise TfscoreError(f"output.predictions: column(s) {sorted(clash)} also in output.passthrough; rename them")
    return Binding(tuple(inputs), tuple(outputs), tuple(passthrough), pass_fields)
