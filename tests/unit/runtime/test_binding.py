"""Columns ↔ tensors without Spark or TensorFlow: binding, validation, conversion (runtime/binding.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tfscore.runtime.binding import bind
from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.model import Signature, TensorInfo

SIG = Signature("serving_default",
                inputs={"x": TensorInfo("x", "float32", (None, 3)), "img": TensorInfo("img", "float32", (None, 2, 2, 1)),
                        "w": TensorInfo("w", "string", (None,))},
                outputs={"p": TensorInfo("p", "float32", (None, 1)), "e": TensorInfo("e", "float32", (None, 4))})


def schema(**fields):
    return pa.schema([pa.field(k, v) for k, v in fields.items()])


BASE = dict(id=pa.int64(), a=pa.float64(), b=pa.float32(), c=pa.int32(), pix=pa.list_(pa.float32()), w=pa.string())


def test_bind_kinds_and_output_schema():
    b = bind(SIG, schema(**BASE), {"x": ["a", "b", "c"], "img": "pix"}, ["id"], {}, "src")
    kinds = {i.tensor.name: (i.kind, i.columns) for i in b.inputs}
    assert kinds == {"x": ("stack", ("a", "b", "c")), "img": ("array", ("pix",)), "w": ("scalar", ("w",))}
    assert b.output_schema() == pa.schema([("id", pa.int64()), ("p", pa.float32()), ("e", pa.list_(pa.float32()))])
    assert b.read_columns == ["id", "a", "b", "c", "pix", "w"]


@pytest.mark.parametrize("columns, fields, needle", [
    ({"x": ["a", "b"], "img": "pix"}, BASE, "2 columns stack into [None, 2]"),
    ({"x": ["a", "b", "zz"], "img": "pix"}, BASE, "column 'zz' not found in src"),
    ({"x": ["a", "b", "w"], "img": "pix"}, BASE, "column 'w' is string, which cannot be cast"),
    ({"x": ["a", "b", "c"], "img": "a"}, BASE, "column 'a' is a scalar"),
    ({"x": ["a", "b", "c"], "img": "pix", "nope": "a"}, BASE, "input.columns: 'nope' is not an input"),
    ({"x": ["a", "b", "c"], "img": "pix"}, {**BASE, "w": pa.float64()}, "column 'w' is double"),
    ({"x": ["a", "b", "pix"], "img": "pix"}, BASE, "must hold scalar columns"),
])
def test_bind_errors_name_the_column(columns, fields, needle):
    with pytest.raises(TfscoreError, match=None) as info:
        bind(SIG, schema(**fields), columns, [], {}, "src")
    assert needle in str(info.value)


def test_validate_and_convert():
    b = bind(SIG, schema(**BASE), {"x": ["a", "b", "c"], "img": "pix"}, ["id"], {"p": "score"}, "src")
    batch = pa.record_batch({
        "id": pa.array([1, 2, 3], pa.int64()), "a": pa.array([1.0, None, 3.0]), "b": pa.array([1, 2, 3], pa.float32()),
        "c": pa.array([1, 2, 3], pa.int32()),
        "pix": pa.array([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2]], pa.list_(pa.float32())), "w": pa.array(["u", "v", "w"])})
    invalid, reasons = b.validate(batch)
    assert invalid.tolist() == [False, True, True]
    assert reasons[1] == "column 'a' is null" and "has 2 values per row" in reasons[2]
    good = batch.filter(pa.array(~invalid))
    assert b.validate(good) == (None, None)
    t = b.to_tensors(good)
    assert t["x"].dtype == np.float32 and t["x"].tolist() == [[1, 1, 1]]
    assert t["img"].shape == (1, 2, 2, 1) and t["w"].tolist() == ["u"]
    out = b.to_output(good, {"p": np.array([[0.5]], np.float32)})
    assert out.to_pydict() == {"id": [1], "score": [0.5]}


def test_integer_range_checked():
    sig = Signature("s", {"n": TensorInfo("n", "int8", (None,))}, {"o": TensorInfo("o", "int8", (None,))})
    b = bind(sig, schema(n=pa.int64()), {}, [], {}, "src")
    invalid, reasons = b.validate(pa.record_batch({"n": pa.array([1, 300, -5], pa.int64())}))
    assert invalid.tolist() == [False, True, False] and "outside int8's range" in reasons[1]


def test_validate_list_columns_nested_nulls_and_range():
    sig = Signature("s", {"img": TensorInfo("img", "int8", (None, 2, 2))}, {"o": TensorInfo("o", "int8", (None,))})
    b = bind(sig, schema(img=pa.list_(pa.list_(pa.int64()))), {}, [], {}, "src")
    batch = pa.record_batch({"img": pa.array([[[1, 2], [3, 4]], [[1, None], [3, 4]], [[1, 2], [3]], [[1, 2], [3, 999]]],
                                             pa.list_(pa.list_(pa.int64())))})
    invalid, reasons = b.validate(batch)
    assert invalid.tolist() == [False, True, True, True]
    assert reasons[1] == "column 'img' has null elements"
    assert "has 3 values per row" in reasons[2] and "wants 4" in reasons[2]
    assert reasons[3] == "column 'img' has values outside int8's range"
    good = batch.filter(pa.array(~invalid))
    assert b.to_tensors(good)["img"].tolist() == [[[1, 2], [3, 4]]]
