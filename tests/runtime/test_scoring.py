"""Predictions equal direct TensorFlow calls on the same rows, for every way of feeding a signature."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.runtime import FEATURES, job_doc
from tfscore import testing


def read_sorted(path, key="id") -> pa.Table:
    table = pq.read_table(str(path))
    return table.sort_by(key)


def stacked(cols: dict, names=FEATURES) -> np.ndarray:
    return np.stack([np.asarray(cols[c]) for c in names], axis=1)


@pytest.mark.parametrize("writer", ["arrow", "spark"])
def test_mlp_from_scalar_columns(run, models, tmp_path, writer):
    cols = testing.tabular_columns(20_000, 8, seed=3)
    inp = testing.write_parquet(tmp_path / "in", cols, row_group=4096, files=3)
    result = run(job_doc(models["mlp"], inp, tmp_path / "out", batchSize=1000,
                         input={"columns": {"features": FEATURES}},
                         output={"passthrough": ["id"], "predictions": {"probability": "score"}, "writer": writer}))
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (20_000, 20_000, 0)
    assert result.model.version == "2"  # latest of 1, 2
    out = read_sorted(tmp_path / "out")
    assert out.column_names == ["id", "score"]
    assert out.schema.field("score").type == pa.float32()
    expected = testing.call_signature(str(models["mlp"] / "2"), {"features": stacked(cols)})["probability"][:, 0]
    np.testing.assert_array_equal(out["id"].to_numpy(), cols["id"])
    np.testing.assert_allclose(out["score"].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    manifest = json.loads((tmp_path / "out" / "_tfscore.json").read_text())
    assert manifest["result"]["rowsOut"] == 20_000 and manifest["model"]["fingerprint"] == result.model.fingerprint
    assert manifest["reader"] == "arrow" and manifest["writer"] == writer


def test_pinned_version_is_used(run, models, tmp_path):
    cols = testing.tabular_columns(500, 8, seed=4)
    inp = testing.write_parquet(tmp_path / "in", cols)
    result = run(job_doc(models["mlp"], inp, tmp_path / "out", model={"version": 1},
                         input={"columns": {"features": FEATURES}}, output={"passthrough": ["id"]}))
    assert result.model.version == "1"
    out = read_sorted(tmp_path / "out")
    expected = testing.call_signature(str(models["mlp"] / "1"), {"features": stacked(cols)})["probability"]
    # Output [None, 1] becomes a scalar column named after the signature output.
    np.testing.assert_allclose(out["probability"].to_numpy(), expected[:, 0], rtol=1e-5, atol=1e-6)


def test_cnn_from_flat_array_column_reshaped(run, models, tmp_path):
    n = 3000
    images = testing.image_column(n, seed=5)
    inp = testing.write_parquet(tmp_path / "in", {"id": np.arange(n), "pixels": images}, row_group=700, files=2)
    result = run(job_doc(models["cnn"], inp, tmp_path / "out", batchSize=256,
                         input={"columns": {"image": "pixels"}}, output={"passthrough": ["id"]}))
    assert result.rows_out == n
    out = read_sorted(tmp_path / "out")
    expected = testing.call_signature(str(models["cnn"] / "1"),
                                      {"image": images.flatten().to_numpy().reshape(n, 28, 28, 1)})
    np.testing.assert_array_equal(out["label"].to_numpy(), expected["label"])
    logits = np.asarray(out["logits"].to_pylist(), dtype=np.float32)
    assert logits.shape == (n, 10)
    np.testing.assert_allclose(logits, expected["logits"], rtol=1e-4, atol=1e-4)


def test_two_inputs_two_outputs_with_casts(run, models, tmp_path):
    n = 5000
    rng = np.random.default_rng(6)
    dense = rng.normal(size=(n, 3))  # float64 columns feeding a float32 input: cast
    extra = rng.integers(-5, 5, size=n).astype(np.int32)  # int32 feeding float64: cast; same-name column, no mapping
    inp = testing.write_parquet(tmp_path / "in", {"key": np.arange(n), "a": dense[:, 0], "b": dense[:, 1],
                                                  "c": dense[:, 2], "extra": extra}, row_group=1000)
    run(job_doc(models["two"], inp, tmp_path / "out", batchSize=777,
                input={"columns": {"dense": ["a", "b", "c"]}},
                output={"passthrough": ["key"], "predictions": {"score": "s", "embedding": "emb"}}))
    out = read_sorted(tmp_path / "out", "key")
    expected = testing.call_signature(str(models["two"] / "1"), {"dense": dense.astype(np.float32),
                                                                 "extra": extra.astype(np.float64)})
    np.testing.assert_allclose(out["s"].to_numpy(), expected["score"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["emb"].to_pylist()), expected["embedding"], rtol=1e-5, atol=1e-6)


def test_string_and_integer_inputs(run, models, tmp_path):
    words = ["alpha", "be", "", "ünïcode", "tensorflow"] * 300
    counts = np.arange(len(words), dtype=np.int64)
    inp = testing.write_parquet(tmp_path / "in", {"id": np.arange(len(words)), "word": words, "count": counts})
    run(job_doc(models["words"], inp, tmp_path / "out", output={"passthrough": ["id", "word"]}))
    out = read_sorted(tmp_path / "out")
    expected = testing.call_signature(str(models["words"] / "1"), {"word": np.array(words, dtype=object),
                                                                   "count": counts})
    np.testing.assert_array_equal(out["length"].to_numpy(), expected["length"])
    np.testing.assert_allclose(out["weighted"].to_numpy(), expected["weighted"])
    assert out["word"].to_pylist() == words


def test_second_signature_int32_from_int64_column(run, models, tmp_path):
    counts = np.arange(1000, dtype=np.int64)
    inp = testing.write_parquet(tmp_path / "in", {"id": np.arange(1000), "count": counts})
    run(job_doc(models["words"], inp, tmp_path / "out", model={"signature": "count_only"},
                output={"passthrough": ["id"]}))
    out = read_sorted(tmp_path / "out")
    np.testing.assert_array_equal(out["doubled"].to_numpy(), counts.astype(np.int32) * 2)


def test_spark_reader_csv_with_where(run, models, tmp_path):
    cols = testing.tabular_columns(3000, 8, seed=7)
    csv = tmp_path / "in"
    csv.mkdir()
    header = "id," + ",".join(FEATURES)
    lines = [header] + [",".join([str(cols["id"][i])] + [repr(float(cols[c][i])) for c in FEATURES])
                        for i in range(3000)]
    (csv / "data.csv").write_text("\n".join(lines) + "\n")
    result = run(job_doc(models["mlp"], csv, tmp_path / "out", model={"version": 1},
                         input={"format": "csv", "options": {"header": "true", "inferSchema": "true"},
                                "where": "id % 3 = 0", "columns": {"features": FEATURES}},
                         output={"passthrough": ["id"], "predictions": {"probability": "p"}}))
    assert result.rows_in == result.rows_out == 1000
    out = read_sorted(tmp_path / "out")
    keep = cols["id"] % 3 == 0
    x = stacked(cols)[keep]
    expected = testing.call_signature(str(models["mlp"] / "1"), {"features": x})["probability"][:, 0]
    np.testing.assert_array_equal(out["id"].to_numpy(), cols["id"][keep])
    np.testing.assert_allclose(out["p"].to_numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fmt", ["orc", "json"])
def test_spark_reader_formats_and_output_formats(run, spark, models, tmp_path, fmt):
    cols = testing.tabular_columns(1200, 8, seed=8)
    df = spark.createDataFrame(pa.table(cols).to_pandas())
    df.write.format(fmt).save(str(tmp_path / "in"))
    result = run(job_doc(models["mlp"], tmp_path / "in", tmp_path / "out", model={"version": 1},
                         input={"format": fmt, "columns": {"features": FEATURES}},
                         output={"format": fmt, "passthrough": ["id"], "predictions": {"probability": "p"}}))
    assert result.rows_in == result.rows_out == 1200
    out = spark.read.format(fmt).load(str(tmp_path / "out")).toPandas().sort_values("id")
    expected = testing.call_signature(str(models["mlp"] / "1"), {"features": stacked(cols)})["probability"][:, 0]
    np.testing.assert_allclose(out["p"].to_numpy(dtype=np.float64), expected, rtol=1e-5, atol=1e-5)


def test_catalog_table_input_and_partitioned_output(run, spark, models, tmp_path):
    cols = testing.tabular_columns(900, 8, seed=9)
    cols["region"] = np.array(["eu", "us", "ap"] * 300)
    spark.createDataFrame(pa.table(cols).to_pandas()).createOrReplaceTempView("transactions")
    doc = job_doc(models["mlp"], None, tmp_path / "out", model={"version": 1},
                  input={"columns": {"features": FEATURES}},
                  output={"passthrough": ["id", "region"], "partitionBy": ["region"], "format": "parquet"})
    doc["spec"]["input"] = {"table": "transactions", "columns": {"features": FEATURES}}
    result = run(doc)
    assert result.rows_out == 900
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == ["region=ap", "region=eu",
                                                                                  "region=us"]
    out = spark.read.parquet(str(tmp_path / "out")).toPandas().sort_values("id")
    assert list(out["region"]) == list(cols["region"])


def test_empty_input_succeeds_with_zero_rows(run, models, tmp_path):
    cols = {k: v[:0] for k, v in testing.tabular_columns(10, 8).items()}
    inp = testing.write_parquet(tmp_path / "in", cols)
    result = run(job_doc(models["mlp"], inp, tmp_path / "out", input={"columns": {"features": FEATURES}},
                         output={"passthrough": ["id"]}))
    assert (result.rows_in, result.rows_out) == (0, 0)
    out = pq.read_table(str(tmp_path / "out"))
    assert out.num_rows == 0 and out.column_names == ["id", "probability"]


def test_a_handed_session_writes_what_tfscore_run_writes_and_keeps_its_own_settings(run, spark, models, tmp_path):
    """A job run on a caller's SparkSession (a notebook's) gets the runtime's SQL settings for the run: Spark's writer
    writes INT64 microsecond timestamps as in `tfscore run`, not the caller's INT96; the caller's settings are back
    afterwards (and its temporary views stay usable as input.table: test_catalog_table_input_and_partitioned_output)."""
    cols = testing.tabular_columns(50, 8, seed=4)
    cols["at"] = pa.array(np.arange(50, dtype="int64") * 1_000_000, pa.timestamp("ms"))
    inp = testing.write_parquet(tmp_path / "in", cols)
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")
    run(job_doc(models["mlp"], inp, tmp_path / "out", batchSize=25, input={"columns": {"features": FEATURES}},
                output={"passthrough": ["id", "at"], "writer": "spark"}))
    assert pq.read_schema(next((tmp_path / "out").glob("*.parquet"))).field("at").type == pa.timestamp("us")
    assert spark.conf.get("spark.sql.parquet.outputTimestampType") == "INT96"
    assert spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "7"
    spark.conf.unset("spark.sql.parquet.outputTimestampType")
    spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
