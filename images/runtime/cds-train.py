"""The class-data-sharing archives' training run (images/runtime/cds.sh): a local Spark session doing what a scoring
run's JVMs do — start, read Parquet, hand Arrow batches to a Python worker (mapInArrow), write Parquet, count — so the
classes they load are the ones archived. Runs in the image build, with pyspark only (tfscore is not installed yet)."""

from __future__ import annotations

import sys
import tempfile

from pyspark.sql import SparkSession


def identity(batches):
    yield from batches


def main(java_options: str) -> None:
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "true")
             .config("spark.driver.extraJavaOptions", java_options)
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.authenticate", "true").config("spark.authenticate.secret", "cds-training")
             .config("spark.network.crypto.enabled", "true").getOrCreate())
    with tempfile.TemporaryDirectory() as tmp:
        spark.range(0, 50_000, numPartitions=4).selectExpr("id", "cast(id as float) as f").write.parquet(f"{tmp}/in")
        df = spark.read.parquet(f"{tmp}/in")
        scored = df.mapInArrow(identity, df.schema)
        scored.write.mode("overwrite").parquet(f"{tmp}/out")
        assert spark.read.parquet(f"{tmp}/out").count() == 50_000
        assert len(spark.sparkContext.parallelize(range(8), 4).mapPartitions(lambda it: [sum(it)]).collect()) == 4
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
