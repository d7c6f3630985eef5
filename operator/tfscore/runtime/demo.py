"""The embedded demo: a small Keras risk model (trained on synthetic features, saved as a versioned SavedModel) and a
Parquet dataset of transactions to score with it. `tfscore demo` generates both, then runs examples/demo-job.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = 16
FEATURE_COLUMNS = [f"f{i:02d}" for i in range(FEATURES)]

DEMO_JOB = """\
apiVersion: tfscore.io/v1alpha1
kind: ScoringJob
metadata:
  name: demo-risk
spec:
  model:
    uri: {root}/models/risk          # TF-Serving style version directories: 1/, 2/, …
    version: latest
  input:
    uri: {root}/data/transactions
    columns:
      features: [{features}]
  output:
    uri: {root}/out/scores
    mode: overwrite
    passthrough: [txn_id, user_id]
    predictions:
      probability: risk_score
  batchSize: 8192
  onInvalidRow: quarantine
  quarantineUri: {root}/out/quarantine
"""


def demo_job_yaml(root: str) -> str:
    return DEMO_JOB.format(root=root, features=", ".join(FEATURE_COLUMNS))


def _true_weights(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=FEATURES).astype(np.float32)


def make_features(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    x[:, 0] = np.abs(x[:, 0]) * 120.0  # amount
    x[:, 1] = rng.integers(0, 24, size=n)  # hour of day
    return x


def _labels(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    z = (x - x.mean(0)) / (x.std(0) + 1e-6)
    logits = z @ w + 0.5 * z[:, 2] * z[:, 3]
    return (logits > np.quantile(logits, 0.95)).astype(np.float32)  # about 5% risky, as fraud data tends to be


def build_model(path: str | Path, version: int = 1, seed: int = 7, epochs: int = 3) -> str:
    """Train a small MLP on synthetic features and export it as `<path>/<version>/` (signature serving_default:
    features [None, 16] float32 → probability [None, 1])."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    w = _true_weights(rng)
    x = make_features(rng, 60_000)
    y = _labels(x, w)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    model = keras.Sequential([
        keras.Input(shape=(FEATURES,), name="features"),
        norm,
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=512, verbose=0)

    target = Path(path) / str(version)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(features):
        return {"probability": model(features, training=False)}

    archive.add_endpoint(name="serving_default", fn=serve,
                         input_signature=[tf.TensorSpec([None, FEATURES], tf.float32, name="features")])
    archive.write_out(str(target), verbose=False)
    return str(target)


def build_dataset(path: str | Path, rows: int, seed: int = 11, files: int = 4, row_group: int = 131_072) -> str:
    """`rows` transactions (txn_id, user_id, f00..f15) in `files` Parquet files under `path`."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_file = -(-rows // files)
    start = 0
    for i in range(files):
        n = min(per_file, rows - start)
        if n <= 0:
            break
        x = make_features(rng, n)
        cols = {"txn_id": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "user_id": pa.array(rng.integers(1, 50_000, size=n, dtype=np.int64))}
        cols.update({name: pa.array(x[:, j]) for j, name in enumerate(FEATURE_COLUMNS)})
        pq.write_table(pa.table(cols), out / f"part-{i:05d}.parquet", row_group_size=row_group)
        start += n
    return str(out)


def prepare(root: str | Path, rows: int) -> Path:
    """Model + data under `root` (reused when already there), and the job manifest; returns the manifest's path."""
    given = str(root).rstrip("/")
    root = Path(root)
    if not (root / "models" / "risk" / "1" / "saved_model.pb").exists():
        build_model(root / "models" / "risk", version=1)
    data = root / "data" / "transactions"
    marker = data / f"_rows_{rows}"
    if not marker.exists():
        if data.exists():
            import shutil

            shutil.rmtree(data)
        build_dataset(data, rows)
        marker.touch()
    job = root / "demo-job.yaml"
    job.write_text(demo_job_yaml(given))
    return job


def describe_scores(output_uri: str, top: int = 5) -> str:
    """A few lines about the scored demo data: how many transactions look risky, and the riskiest ones."""
    import pyarrow.compute as pc

    table = pq.read_table(output_uri, columns=["txn_id", "user_id", "risk_score"])
    scores = table["risk_score"]
    risky = pc.sum(pc.greater(scores, 0.5)).as_py() or 0
    lines = [f"\nrisk scores: mean {pc.mean(scores).as_py():.3f}, {risky:,} of {table.num_rows:,} transactions above 0.5",
             f"top {top}:"]
    idx = pc.select_k_unstable(table, top, [("risk_score", "descending")])
    for row in table.take(idx).to_pylist():
        lines.append(f"  txn {row['txn_id']:>9}  user {row['user_id']:>6}  risk {row['risk_score']:.4f}")
    return "\n".join(lines) + "\n"
