"""Ray Data's answer: read_parquet → map_batches with a class holding the model (2 actors: this machine's cores) →
write_parquet. Runs only in the benchmark's own venv (requirements/bench.lock, `make bench-venv`); bench/cold.py starts
it in a fresh process.

    bench-venv/bin/python bench/tools/ray_data.py CASE_JSON    (the keys of by_hand.py)
"""

from __future__ import annotations

import json
import os
import sys


def main(case: dict) -> None:
    import numpy as np
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)

    class Score:
        def __init__(self):
            import tensorflow as tf

            self.tf = tf
            self.fn = tf.saved_model.load(case["model"]).signatures["serving_default"]

        def __call__(self, batch: dict) -> dict:
            cols = case["features"]
            if len(cols) == 1:
                x = np.stack(batch[cols[0]]).reshape(-1, *case["shape"]).astype(np.float32)
            else:
                x = np.stack([batch[c] for c in cols], axis=1).astype(np.float32)
            out = self.fn(**{case["feed"]: self.tf.constant(x)})[case["fetch"]].numpy()
            return {"id": batch["id"], "score": out.reshape(len(x), -1)[:, 0]}

    ds = ray.data.read_parquet(case["input"], columns=["id", *case["features"]])
    # Half a logical CPU per actor: with a whole one, the two actors hold both CPUs and the read tasks never get one
    # (the pipeline waits forever on a 2-core machine).
    ds.map_batches(Score, batch_size=case["batch"], batch_format="numpy", concurrency=2,
                   num_cpus=0.5).write_parquet(case["output"])
    ray.shutdown()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
