"""Real SavedModels and datasets for tests, benchmarks and image self-checks (built on the spot, nothing downloaded).

Each builder writes a TF-Serving style version directory `<root>/<version>/` holding a SavedModel whose signature is fixed
here, so tests know exactly what to feed and expect. Weights are random but seeded: predictions are deterministic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _tf():
    import tensorflow as tf

    return tf


def _save(module, root: str | Path, version: int, signatures: dict) -> str:
    tf = _tf()
    target = Path(root) / str(version)
    tf.saved_model.save(module, str(target), signatures=signatures)
    return str(target)


def _dense(tf, rng, n_in: int, n_out: int, name: str):
    w = tf.Variable(rng.normal(scale=1 / np.sqrt(n_in), size=(n_in, n_out)).astype(np.float32), name=f"{name}_w")
    b = tf.Variable(rng.normal(scale=0.1, size=(n_out,)).astype(np.float32), name=f"{name}_b")
    return w, b


def mlp(root: str | Path, features: int = 64, hidden: tuple[int, ...] = (64, 32), version: int = 1, seed: int = 0) -> str:
    """serving_default: features float32[None, features] → probability float32[None, 1]."""
    tf = _tf()
    rng = np.random.default_rng(seed)
    sizes = (features, *hidden, 1)

    class MLP(tf.Module):
        def __init__(self):
            super().__init__()
            self.layers = [_dense(tf, rng, a, b, f"l{i}") for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False))]

        @tf.function(input_signature=[tf.TensorSpec([None, features], tf.float32, name="features")])
        def serve(self, features):
            x = features
            for i, (w, b) in enumerate(self.layers):
                x = tf.matmul(x, w) + b
                x = tf.nn.relu(x) if i < len(self.layers) - 1 else tf.sigmoid(x)
            return {"probability": x}

    m = MLP()
    return _save(m, root, version, {"serving_default": m.serve})


def cnn(root: str | Path, version: int = 1, seed: int = 0, classes: int = 10) -> str:
    """MNIST-style conv net. serving_default: image float32[None, 28, 28, 1] → logits float32[None, 10],
    label int64[None]."""
    tf = _tf()
    rng = np.random.default_rng(seed)

    class CNN(tf.Module):
        def __init__(self):
            super().__init__()
            self.k1 = tf.Variable(rng.normal(scale=0.3, size=(3, 3, 1, 32)).astype(np.float32))
            self.k2 = tf.Variable(rng.normal(scale=0.06, size=(3, 3, 32, 64)).astype(np.float32))
            self.d1 = _dense(tf, rng, 5 * 5 * 64, 128, "d1")
            self.d2 = _dense(tf, rng, 128, classes, "d2")

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image")])
        def serve(self, image):
            x = tf.nn.relu(tf.nn.conv2d(image, self.k1, 1, "VALID"))
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            x = tf.nn.relu(tf.nn.conv2d(x, self.k2, 1, "VALID"))
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            x = tf.reshape(x, [-1, 5 * 5 * 64])
            x = tf.nn.relu(tf.matmul(x, self.d1[0]) + self.d1[1])
            logits = tf.matmul(x, self.d2[0]) + self.d2[1]
            return {"logits": logits, "label": tf.argmax(logits, axis=1)}

    m = CNN()
    return _save(m, root, version, {"serving_default": m.serve})


def two_in_two_out(root: str | Path, version: int = 1, seed: int = 0) -> str:
    """serving_default: dense float32[None, 3], extra float64[None] → score float32[None], embedding float32[None, 4]."""
    tf = _tf()
    rng = np.random.default_rng(seed)

    class Two(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rng.normal(size=(3, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="dense"),
                                      tf.TensorSpec([None], tf.float64, name="extra")])
        def serve(self, dense, extra):
            emb = tf.tanh(tf.matmul(dense, self.w))
            score = tf.reduce_sum(emb, axis=1) + tf.cast(extra, tf.float32)
            return {"score": score, "embedding": emb}

    m = Two()
    return _save(m, root, version, {"serving_default": m.serve})


def string_int_model(root: str | Path, version: int = 1) -> str:
    """serving_default: word string[None], count int64[None] → length int64[None], weighted float32[None];
    second signature `count_only`: count int32[None, 1] → doubled int32[None, 1]."""
    tf = _tf()

    class Words(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="word"),
                                      tf.TensorSpec([None], tf.int64, name="count")])
        def serve(self, word, count):
            length = tf.cast(tf.strings.length(word), tf.int64)
            return {"length": length, "weighted": tf.cast(length * count, tf.float32) / 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.int32, name="count")])
        def count_only(self, count):
            return {"doubled": count * 2}

    m = Words()
    return _save(m, root, version, {"serving_default": m.serve, "count_only": m.count_only})


def keras_mlp(root: str | Path, features: int = 8, hidden: int = 16, version: int = 1, seed: int = 0) -> str:
    """A Keras 3 `.keras` archive at <root>/<version>/model.keras: input `feats` float32[None, features] → outputs
    `risk` float32[None, 1] (sigmoid) and `logit` float32[None, 1]."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=(features,), name="feats", dtype="float32")
    x = keras.layers.Dense(hidden, activation="relu", name="hidden")(inp)
    logit = keras.layers.Dense(1, name="logit")(x)
    risk = keras.layers.Activation("sigmoid", name="risk")(logit)
    model = keras.Model(inputs={"feats": inp}, outputs={"risk": risk, "logit": logit})
    target = Path(root) / str(version)
    target.mkdir(parents=True, exist_ok=True)
    path = target / "model.keras"
    model.save(str(path))
    return str(path)


def keras_export(root: str | Path, features: int = 8, version: int = 1, seed: int = 0) -> str:
    """The same Keras 3 model as keras_mlp, exported as a SavedModel (`model.export`, what serving wants) at
    <root>/<version>: signature serving_default, input `feats`, outputs `risk` and `logit`."""
    import keras

    path = keras_mlp(Path(f"{root}-archive"), features=features, version=version, seed=seed)
    target = Path(root) / str(version)
    keras.saving.load_model(path, compile=False).export(str(target), verbose=False)
    return str(target)


def call_keras(path: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A .keras model called directly on in-memory numpy (the reference)."""
    import keras

    model = keras.saving.load_model(path, compile=False)
    out = model({k: np.asarray(v) for k, v in feeds.items()}, training=False)
    return {k: np.asarray(v) for k, v in out.items()}


def write_parquet(path: str | Path, columns: dict[str, pa.Array | np.ndarray | list], row_group: int = 65_536,
                  files: int = 1) -> str:
    """Write `columns` as `files` Parquet files under directory `path` (row groups of `row_group` rows)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: v if isinstance(v, pa.Array | pa.ChunkedArray) else pa.array(v) for k, v in columns.items()})
    per = -(-table.num_rows // files) if table.num_rows else 0
    for i in range(files):
        part = table.slice(i * per, per) if per else table
        pq.write_table(part, out / f"part-{i:05d}.parquet", row_group_size=row_group)
    return str(out)


def tabular_columns(rows: int, features: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {"id": np.arange(rows, dtype=np.int64)}
    x = rng.normal(size=(rows, features)).astype(np.float32)
    for j in range(features):
        cols[f"f{j:02d}"] = x[:, j]
    return cols


def image_column(rows: int, seed: int = 0) -> pa.Array:
    """`rows` flat 784-float images as list<float> (what a CSV/Parquet export of MNIST usually looks like)."""
    rng = np.random.default_rng(seed)
    values = rng.random(rows * 784, dtype=np.float32)
    offsets = np.arange(0, rows * 784 + 1, 784, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def call_signature(version_dir: str, feeds: dict[str, np.ndarray], signature: str = "serving_default",
                   batch: int = 8192) -> dict[str, np.ndarray]:
    """Direct TensorFlow calls on in-memory numpy (the reference the tests compare against)."""
    tf = _tf()
    fn = tf.saved_model.load(version_dir).signatures[signature]
    n = len(next(iter(feeds.values())))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, batch):
        out = fn(**{k: tf.constant(v[start:start + batch]) for k, v in feeds.items()})
        for k, v in out.items():
            parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}
