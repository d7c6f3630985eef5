"""Every kind of bad input: a clear message naming the thing, and nothing written or clobbered."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.runtime import FEATURES, job_doc
from tfscore import testing
from tfscore.runtime.errors import InvalidRowError, TfscoreError


@pytest.fixture
def tabular(tmp_path):
    cols = testing.tabular_columns(2000, 8, seed=1)
    return cols, testing.write_parquet(tmp_path / "in", cols, row_group=500)


def fails(run, doc, *needles, kind=TfscoreError):
    with pytest.raises(kind) as info:
        run(doc)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def assert_nothing_written(tmp_path):
    out = tmp_path / "out"
    assert not out.exists(), f"output written: {list(out.rglob('*'))}"
    leftovers = [p.name for p in tmp_path.iterdir() if ".tfscore-" in p.name]
    assert not leftovers, f"staging left behind: {leftovers}"


def test_model_uri_missing(run, tmp_path, tabular):
    fails(run, job_doc(tmp_path / "nope", tabular[1], tmp_path / "out"), "model.uri", "does not exist")
    assert_nothing_written(tmp_path)


def test_model_dir_without_savedmodel(run, tmp_path, tabular):
    (tmp_path / "empty-model" / "v1").mkdir(parents=True)
    fails(run, job_doc(tmp_path / "empty-model", tabular[1], tmp_path / "out"), "model.uri", "saved_model.pb",
          "numeric version")


def test_no_such_version(run, models, tmp_path, tabular):
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "out", model={"version": 7}), "model.version",
          "version 7 not found", "available: 1, 2")
    assert_nothing_written(tmp_path)


def test_no_such_signature(run, models, tmp_path, tabular):
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "out", model={"signature": "predict"}),
          "model.signature", "'predict' not found", "serving_default")


def test_no_such_tag(run, models, tmp_path, tabular):
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "out", model={"tags": ["gpu"]}), "model.tags",
          "['gpu']", "['serve']")


def test_input_column_missing(run, models, tmp_path, tabular):
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "out",
                       input={"columns": {"features": FEATURES[:-1] + ["f99"]}}),
          "input.columns.features", "column 'f99' not found", str(tabular[1]))
    assert_nothing_written(tmp_path)


def test_same_name_input_missing(run, models, tmp_path, tabular):
    # No mapping: the signature input 'features' must then be a column of that name.
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "out"), "signature input 'features'",
          "column 'features' not found")


def test_passthrough_missing(run, models, tmp_path, tabular):
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "out", input={"columns": {"features": FEATURES}},
                       output={"passthrough": ["user"]}), "output.passthrough", "column 'user' not found")


def test_unknown_prediction_output(run, models, tmp_path, tabular):
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "out", input={"columns": {"features": FEATURES}},
                       output={"predictions": {"prob": "p"}}), "output.predictions", "'prob'", "probability")


def test_dtype_not_castable(run, models, tmp_path):
    cols = testing.tabular_columns(100, 8)
    cols["f03"] = np.array([str(v) for v in cols["f03"]])
    inp = testing.write_parquet(tmp_path / "in", cols)
    fails(run, job_doc(models["mlp"], inp, tmp_path / "out", input={"columns": {"features": FEATURES}}),
          "column 'f03' is string", "cannot be cast", "features")
    assert_nothing_written(tmp_path)


def test_float_to_int_not_castable(run, models, tmp_path):
    inp = testing.write_parquet(tmp_path / "in", {"word": ["a", "b"], "count": [1.5, 2.0]})
    fails(run, job_doc(models["words"], inp, tmp_path / "out"), "column 'count' is double", "int64")


def test_array_length_does_not_fit_shape(run, models, tmp_path):
    # 783 values per row cannot become 28x28x1.
    values = np.zeros(10 * 783, dtype=np.float32)
    col = pa.ListArray.from_arrays(pa.array(np.arange(0, 10 * 783 + 1, 783, dtype=np.int32)), pa.array(values))
    inp = testing.write_parquet(tmp_path / "in", {"id": np.arange(10), "pixels": col})
    fails(run, job_doc(models["cnn"], inp, tmp_path / "out", input={"columns": {"image": "pixels"}},
                       output={"passthrough": ["id"]}),
          "column 'pixels' has 783 values per row", "'image' wants 784", "[None, 28, 28, 1]", "row 0",
          kind=InvalidRowError)
    assert_nothing_written(tmp_path)


def test_fixed_size_array_mismatch_is_caught_at_plan_time(run, models, tmp_path):
    col = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(5 * 700, dtype=np.float32)), 700)
    inp = testing.write_parquet(tmp_path / "in", {"pixels": col})
    fails(run, job_doc(models["cnn"], inp, tmp_path / "out", input={"columns": {"image": "pixels"}}),
          "holds 700 values per row", "wants 784")


def test_nulls_fail_naming_column_row_and_file(run, models, tmp_path):
    cols = testing.tabular_columns(1000, 8)
    f05 = pa.array(cols["f05"], mask=np.arange(1000) == 637)
    cols["f05"] = f05
    inp = testing.write_parquet(tmp_path / "in", cols, row_group=300)
    msg = fails(run, job_doc(models["mlp"], inp, tmp_path / "out", batchSize=128,
                             input={"columns": {"features": FEATURES}}, output={"passthrough": ["id"]}),
                "column 'f05' is null", "row 637", "part-00000.parquet", "id=637", "quarantine",
                kind=InvalidRowError)
    assert "Traceback" not in msg and "py4j" not in msg
    assert_nothing_written(tmp_path)


def test_quarantine_keeps_counts_exact(run, models, tmp_path):
    n = 3000
    cols = testing.tabular_columns(n, 8, seed=2)
    bad_null = np.zeros(n, dtype=bool)
    bad_null[[5, 999, 2500]] = True
    cols["f01"] = pa.array(cols["f01"], mask=bad_null)
    inp = testing.write_parquet(tmp_path / "in", cols, row_group=700, files=2)
    result = run(job_doc(models["mlp"], inp, tmp_path / "out", batchSize=256, onInvalidRow="quarantine",
                         quarantineUri=str(tmp_path / "q"), input={"columns": {"features": FEATURES}},
                         output={"passthrough": ["id"]}))
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (n, n - 3, 3)
    q = pq.read_table(str(tmp_path / "q")).sort_by("id")
    assert q["id"].to_pylist() == [5, 999, 2500]
    assert set(q["_tfscore_reason"].to_pylist()) == {"column 'f01' is null"}
    out = pq.read_table(str(tmp_path / "out"))
    assert out.num_rows == n - 3 and not set(out["id"].to_pylist()) & {5, 999, 2500}


def test_quarantine_variable_length_arrays(run, models, tmp_path):
    rows = [np.zeros(784, np.float32)] * 3 + [np.zeros(10, np.float32)] + [np.ones(784, np.float32)]
    col = pa.array([r.tolist() for r in rows], type=pa.list_(pa.float32()))
    inp = testing.write_parquet(tmp_path / "in", {"id": np.arange(5), "pixels": col})
    result = run(job_doc(models["cnn"], inp, tmp_path / "out", onInvalidRow="quarantine",
                         quarantineUri=str(tmp_path / "q"), input={"columns": {"image": "pixels"}},
                         output={"passthrough": ["id"]}))
    assert (result.rows_out, result.rows_quarantined) == (4, 1)
    q = pq.read_table(str(tmp_path / "q"))
    assert q["id"].to_pylist() == [3] and "has 10 values per row" in q["_tfscore_reason"][0].as_py()


def test_corrupt_input_file_named(run, models, tmp_path, tabular):
    bad = tmp_path / "in" / "part-00009.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "out", input={"columns": {"features": FEATURES}}),
          "input.uri", "cannot read Parquet file", "part-00009.parquet")
    assert_nothing_written(tmp_path)


def test_unreadable_input_with_spark_reader(run, models, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.orc").write_bytes(b"garbage")
    fails(run, job_doc(models["mlp"], tmp_path / "in", tmp_path / "out",
                       input={"format": "orc", "columns": {"features": FEATURES}}), "input", str(tmp_path / "in"))
    assert_nothing_written(tmp_path)


def test_input_missing(run, models, tmp_path):
    fails(run, job_doc(models["mlp"], tmp_path / "nothing", tmp_path / "out"), "input.uri", "does not exist")


def test_output_already_there_is_untouched(run, models, tmp_path, tabular):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.parquet").write_bytes(b"keep me")
    fails(run, job_doc(models["mlp"], tabular[1], out, input={"columns": {"features": FEATURES}}),
          "output.uri", "already exists", "errorIfExists")
    assert [p.name for p in out.iterdir()] == ["precious.parquet"]
    assert (out / "precious.parquet").read_bytes() == b"keep me"


def test_output_inside_input_refused(run, models, tmp_path, tabular):
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "in" / "scores", output={"mode": "overwrite"},
                       input={"columns": {"features": FEATURES}}), "output.uri", "overlaps input.uri")


def test_bad_where_names_the_filter(run, models, tmp_path, tabular):
    fails(run, job_doc(models["mlp"], tabular[1], tmp_path / "out",
                       input={"where": "no_such_col > 1", "columns": {"features": FEATURES}}),
          "no_such_col > 1")
    assert_nothing_written(tmp_path)


def test_a_java_error_is_told_by_its_innermost_cause(spark):
    """py4j's own text ("An error occurred while calling …") says nothing; the sentence carries the Java cause."""
    from tfscore.runtime.errors import cause

    try:
        spark._jvm.java.lang.Class.forName("org.apache.hadoop.fs.s3a.NoSuchFileSystem")
    except Exception as exc:  # noqa: BLE001 - py4j's Py4JJavaError
        assert cause(exc) == "ClassNotFoundException: org.apache.hadoop.fs.s3a.NoSuchFileSystem"
    else:
        raise AssertionError("Class.forName of a missing class succeeded")
