"""s3:// end to end against a real S3 API server: model, Parquet input and Parquet output all in buckets."""

from __future__ import annotations

import io as _io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import FEATURES, job_doc

from tfscore import testing


@pytest.fixture
def s3(s3_endpoint):
    import s3fs

    fs = s3fs.S3FileSystem()
    for bucket in ("models", "lake"):
        if not fs.exists(bucket):
            fs.mkdir(bucket)
    fs.invalidate_cache()
    return fs


def test_s3_model_input_and_output(run, s3, models, tmp_path, monkeypatch):
    monkeypatch.setenv("TFSCORE_CACHE", str(tmp_path / "cache"))
    s3.put(str(models["mlp"]) + "/", "models/risk/", recursive=True)
    cols = testing.tabular_columns(3000, 8, seed=31)
    local = testing.write_parquet(tmp_path / "in", cols, row_group=700, files=2)
    s3.put(local + "/", "lake/features/", recursive=True)

    result = run(job_doc("s3://models/risk", "s3://lake/features", "s3://lake/scores",
                         input={"columns": {"features": FEATURES}}, output={"passthrough": ["id"]}))
    assert (result.rows_in, result.rows_out, result.model.version) == (3000, 3000, "2")
    s3.invalidate_cache()
    files = [f for f in s3.find("lake/scores") if f.endswith(".parquet")]
    assert files and not [f for f in s3.find("lake") if ".tfscore-" in f]
    table = pq.read_table(_io.BytesIO(b"".join(s3.cat_file(f) for f in files[:1])))
    got = pq.ParquetDataset("lake/scores", filesystem=s3).read().sort_by("id")
    expected = testing.call_signature(str(models["mlp"] / "2"),
                                      {"features": np.stack([cols[c] for c in FEATURES], 1)})["probability"][:, 0]
    np.testing.assert_allclose(got["probability"].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    assert table.column_names == ["id", "probability"]
    manifest = json.loads(s3.cat_file("lake/scores/_tfscore.json"))
    assert manifest["result"]["rowsOut"] == 3000 and manifest["model"]["versionUri"] == "s3://models/risk/2"

    # errorIfExists against a bucket prefix that has data: refused, untouched.
    from tfscore.runtime.errors import TfscoreError

    before = sorted(s3.find("lake/scores"))
    with pytest.raises(TfscoreError, match="already exists"):
        run(job_doc("s3://models/risk", "s3://lake/features", "s3://lake/scores",
                    input={"columns": {"features": FEATURES}}))
    s3.invalidate_cache()
    assert sorted(s3.find("lake/scores")) == before
