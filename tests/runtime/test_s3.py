"""s3:// end to end against a real S3 API server: model, Parquet input and Parquet output all in buckets."""

from __future__ import annotations

import io as _io
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from harness.runtime import FEATURES, job_doc, tfscore
from tfscore import testing


def run_without_aws(doc: dict, tmp_path, *args: str, **env: str):
    """`tfscore run` of the manifest `doc` in a fresh process whose environment has no AWS_* settings but `env`."""
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return tfscore("run", manifest, *args, env={**clean, "TFSCORE_CACHE": str(tmp_path / "cache"), **env})


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


def test_local_run_applies_spec_env_to_driver_and_workers(s3, s3_endpoint, models, tmp_path):
    """`tfscore run` in a fresh process whose environment has no S3 settings: spec.env alone (with a $(NAME)
    reference, as Kubernetes expands it) lets the driver read the model and the Python workers read and write the
    buckets. A valueFrom entry only a cluster can resolve gets a note naming it."""
    s3.put(str(models["mlp"]) + "/", "models/env-risk/", recursive=True)
    cols = testing.tabular_columns(2000, 8, seed=32)
    local = testing.write_parquet(tmp_path / "in", cols, row_group=500, files=2)
    s3.put(local + "/", "lake/env-features/", recursive=True)
    env_spec = [{"name": "S3", "value": s3_endpoint},
                {"name": "AWS_ENDPOINT_URL", "value": "$(S3)"}, {"name": "AWS_ENDPOINT_URL_S3", "value": "$(S3)"},
                {"name": "AWS_ACCESS_KEY_ID", "value": os.environ["AWS_ACCESS_KEY_ID"]},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": os.environ["AWS_SECRET_ACCESS_KEY"]},
                {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
                {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "scoring", "key": "token"}}}]
    doc = job_doc("s3://models/env-risk", "s3://lake/env-features", "s3://lake/env-scores",
                  input={"columns": {"features": FEATURES}}, output={"passthrough": ["id"]}, env=env_spec)
    proc = run_without_aws(doc, tmp_path, "--json", "--master", "local[2]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["rowsOut"] == 2000
    assert ("spec.env[6] API_TOKEN: secretKeyRef is resolved only by Kubernetes; left unset: export it to set it"
            in proc.stderr), proc.stderr[-3000:]
    s3.invalidate_cache()
    got = pq.ParquetDataset("lake/env-scores", filesystem=s3).read().sort_by("id")
    expected = testing.call_signature(str(models["mlp"] / "2"),
                                      {"features": np.stack([cols[c] for c in FEATURES], 1)})["probability"][:, 0]
    np.testing.assert_allclose(got["probability"].to_numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("where", ["model", "input", "output", "quarantine"])
def test_missing_storage_credentials_name_the_field(s3, s3_endpoint, models, tmp_path, where):
    """No credentials for a bucket: one sentence naming the field and the URI (not a botocore traceback), exit 2,
    nothing written."""
    local_in = testing.write_parquet(tmp_path / "in", testing.tabular_columns(100, 8))
    uris = {"model": str(models["mlp"]), "input": local_in, "output": str(tmp_path / "out"),
            "quarantine": str(tmp_path / "quarantine")}
    uris[where] = {"model": "s3://models/risk", "input": "s3://lake/features", "output": "s3://lake/nocreds",
                   "quarantine": "s3://lake/nocreds"}[where]
    doc = job_doc(uris["model"], uris["input"], uris["output"], input={"columns": {"features": FEATURES}},
                  onInvalidRow="quarantine", quarantineUri=uris["quarantine"])
    field = "quarantineUri" if where == "quarantine" else f"{where}.uri"
    proc = run_without_aws(doc, tmp_path, "--master", "local[1]", AWS_ENDPOINT_URL=s3_endpoint,
                           AWS_ENDPOINT_URL_S3=s3_endpoint, AWS_DEFAULT_REGION="us-east-1")
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {field}: cannot access {uris[where]}: Unable to locate credentials"), last
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
    s3.invalidate_cache()
    assert not s3.exists("lake/nocreds")
