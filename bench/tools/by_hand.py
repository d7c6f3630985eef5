"""The by-hand script a user writes instead of tfscore: pyarrow batches → the SavedModel's signature → ParquetWriter, in
one process (one TensorFlow using every core). Run by bench/cold.py in a fresh process; prints when its first batch was
scored (the floor for any tool that scores with TensorFlow in a fresh process).

    python bench/tools/by_hand.py CASE_JSON      (keys: model, input, output, features, shape, feed, fetch, batch)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def feed(batch: pa.RecordBatch, case: dict) -> np.ndarray:
    """The signature's input from a batch: scalar columns stacked, or one list column reshaped."""
    cols = case["features"]
    if len(cols) == 1:
        flat = batch.column(cols[0]).flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(-1, *case["shape"]).astype(np.float32, copy=False)
    return np.stack([batch.column(c).to_numpy(zero_copy_only=False) for c in cols], axis=1)


def main(case: dict) -> None:
    import tensorflow as tf

    fn = tf.saved_model.load(case["model"]).signatures["serving_default"]
    out = Path(case["output"])
    out.mkdir(parents=True, exist_ok=True)
    writer = None
    first_batch_at = None
    for batch in ds.dataset(case["input"], format="parquet").to_batches(
            columns=["id", *case["features"]], batch_size=case["batch"]):
        result = fn(**{case["feed"]: tf.constant(feed(batch, case))})[case["fetch"]].numpy()
        first_batch_at = first_batch_at or time.time()
        table = pa.table({"id": batch.column("id"), "score": result.reshape(len(result), -1)[:, 0]})
        writer = writer or pq.ParquetWriter(out / "part-0.parquet", table.schema)
        writer.write_table(table)
    writer.close()
    print(json.dumps({"firstBatchAt": first_batch_at}))  # epoch seconds: bench/cold.py times it from the launch


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
