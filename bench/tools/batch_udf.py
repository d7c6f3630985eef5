"""Spark's own answer: `predict_batch_udf` (pyspark.ml.functions) on a local[*] session, the model loaded once per Python
worker. Run by bench/cold.py in a fresh process.

    python bench/tools/batch_udf.py CASE_JSON    (the keys of by_hand.py)
"""

from __future__ import annotations

import json
import sys


def main(case: dict) -> None:
    import numpy as np
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType

    spark = (SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "4g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")

    def make_predict_fn():
        import tensorflow as tf

        fn = tf.saved_model.load(case["model"]).signatures["serving_default"]

        def predict(x: np.ndarray) -> np.ndarray:
            out = fn(**{case["feed"]: tf.constant(x.reshape(-1, *case["shape"]).astype(np.float32))})
            return out[case["fetch"]].numpy().reshape(len(x), -1)[:, 0].astype(np.float32)

        return predict

    udf = predict_batch_udf(make_predict_fn, return_type=FloatType(), batch_size=case["batch"],
                            input_tensor_shapes=[[int(np.prod(case["shape"]))]])
    df = spark.read.parquet(case["input"])
    cols = case["features"]
    x = F.col(cols[0]).cast(ArrayType(FloatType())) if len(cols) == 1 else F.array(*[F.col(c) for c in cols])
    df.select("id", udf(x).alias("score")).write.mode("overwrite").parquet(case["output"])
    spark.stop()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
