"""The driver's TensorFlow-free reading of saved_model.pb and fingerprint.pb (runtime/savedmodel_pb.py) agrees with
TensorFlow's own decoding on real SavedModels the tests build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfscore import testing
from tfscore.runtime import savedmodel_pb

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("models")
    return [testing.mlp(root / "mlp", features=8, hidden=(16,)), testing.cnn(root / "cnn"),
            testing.two_in_two_out(root / "two"), testing.string_int_model(root / "words")]


def _tf_signatures(path: str) -> dict:
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(Path(path, "saved_model.pb").read_bytes())
    out = {}
    for mg in sm.meta_graphs:
        sigs = {}
        for name, sd in mg.signature_def.items():
            if name.startswith("__"):  # TensorFlow's own init op, no tensors to feed
                continue

            def info(t):  # what tfscore did before, with TensorFlow
                dtype = tf.dtypes.as_dtype(t.dtype)
                shape = None if t.tensor_shape.unknown_rank else tuple(
                    None if d.size < 0 else int(d.size) for d in t.tensor_shape.dim)
                return "string" if dtype == tf.string else np.dtype(dtype.as_numpy_dtype).name, shape

            sigs[name] = ({k: info(v) for k, v in sd.inputs.items()}, {k: info(v) for k, v in sd.outputs.items()})
        out[frozenset(mg.meta_info_def.tags)] = sigs
    return out


def test_signatures_match_tensorflows_decoding(saved):
    for path in saved:
        ours = {tags: {k: v for k, v in sigs.items() if not k.startswith("__")}
                for tags, sigs in savedmodel_pb.meta_graphs(Path(path, "saved_model.pb").read_bytes())}
        assert ours == _tf_signatures(path), path


def test_singleprint_matches_tensorflow(saved):
    for path in saved:
        expected = tf.saved_model.experimental.read_fingerprint(path).singleprint()
        assert savedmodel_pb.singleprint(Path(path, "fingerprint.pb").read_bytes()) == expected


def test_garbage_is_a_decode_error():
    with pytest.raises(savedmodel_pb.DecodeError):
        list(savedmodel_pb.fields(b"\x0a\xff\xff"))
