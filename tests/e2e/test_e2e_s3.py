"""ScoringJobs on the cluster that read their model and input from a real S3 server (SeaweedFS on the node's address,
hack/s3) and commit their output there, with the credentials from a Secret (env valueFrom: the chart's default
policy refuses an envFrom without a prefix): the Arrow reader and writer (fsspec in the executors), and Spark's reader
with `where` and Spark's writer with `partitionBy` (s3a in the executors). Predictions equal the local reference run;
the output carries its marker and nothing is left beside it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from e2e_harness import E2E_CACHE, Jobs, job_manifest, timed

from harness.common import CACHE, CI, Unavailable, skip_or_fail
from harness.seaweedfs import SeaweedFS

SECRET = "s3-credentials"
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION")


@pytest.fixture(scope="module")
def lake(jobs: Jobs, volume) -> Iterator[dict[str, Any]]:
    """SeaweedFS bound to the node's address (pods reach the host there), the model and the input uploaded, a
    `region` variant of the input for partitionBy, and the credentials as a Secret in the jobs namespace."""
    import s3fs

    server = SeaweedFS(CACHE, E2E_CACHE / "s3", host=SeaweedFS.node_ip())
    with timed("s3 server + upload"):
        try:
            server.stop(purge=True)
            server.start(build=CI)
        except Unavailable as exc:
            skip_or_fail("e2e", f"no S3 server: {exc}")
        server.make_bucket("lake")
        env = server.env()
        fs = s3fs.S3FileSystem(key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"],
                               client_kwargs={"endpoint_url": server.endpoint, "region_name": "us-east-1"})
        fs.put(str(volume / "model") + "/", "lake/model/", recursive=True)
        fs.put(str(volume / "input") + "/", "lake/input/", recursive=True)
        table = pq.read_table(str(volume / "input"))
        region = pc.choose(pc.cast(pc.bit_wise_and(table["id"], 3), pa.int8()), "eu", "us", "apac", "eu")
        regional = table.append_column("region", region)
        for k, chunk in enumerate((regional.slice(0, regional.num_rows // 2), regional.slice(regional.num_rows // 2))):
            buf = io.BytesIO()
            pq.write_table(chunk, buf, row_group_size=5000)
            fs.pipe_file(f"lake/regional/part-{k}.parquet", buf.getvalue())
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET},
                  "stringData": {**env, "AWS_REGION": "us-east-1"}}
        jobs.apply(secret)
    try:
        yield {"server": server, "fs": fs, "regional": regional}
    finally:
        jobs("delete", "secret", SECRET, "--ignore-not-found", check=False)
        server.stop(purge=True)


def s3_job(name: str, **spec: Any) -> dict[str, Any]:
    job = job_manifest(name)
    s = job["spec"]
    for key in ("volumes", "volumeMounts"):
        s.pop(key, None)
    s["model"]["uri"] = "s3://lake/model"
    s["input"]["uri"] = "s3://lake/input"
    s["output"]["uri"] = f"s3://lake/out/{name}"
    # Each key by name (env valueFrom): the chart's default ScoringPolicy refuses an envFrom without a prefix, and a
    # prefix would hide AWS_* from the SDKs.
    s["env"] = [*s.get("env", []), *({"name": k, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": k}}}
                                     for k in SECRET_KEYS)]
    for key, value in spec.items():
        s[key] = {**s.get(key, {}), **value} if isinstance(value, dict) else value
    return job


def read(fs, prefix: str) -> pa.Table:
    fs.invalidate_cache()
    files = [f for f in fs.find(prefix) if f.endswith(".parquet")]
    return pa.concat_tables(pq.read_table(io.BytesIO(fs.cat_file(f))) for f in files).sort_by("id")


def test_s3_arrow_paths_with_credentials_from_a_secret(jobs: Jobs, lake, reference):
    jobs.apply(s3_job("s3-arrow"))
    status = jobs.succeeded("s3-arrow")
    got = read(lake["fs"], "lake/out/s3-arrow")
    assert status["result"]["rowsOut"] == reference["table"].num_rows == got.num_rows
    np.testing.assert_allclose(got["score"].to_numpy(), reference["table"]["score"].to_numpy(), rtol=1e-5, atol=1e-6)
    manifest = json.loads(lake["fs"].cat_file("lake/out/s3-arrow/_tfscore.json"))
    assert (manifest["reader"], manifest["writer"]) == ("arrow", "arrow")
    assert not [f for f in lake["fs"].find("lake/out") if f.split("/")[2].startswith(".")]


def test_s3_spark_reader_with_where_and_partitioned_spark_writer(jobs: Jobs, lake, reference):
    job = s3_job("s3-spark", input={"uri": "s3://lake/regional", "where": "region <> 'apac'"},
                 output={"passthrough": ["id", "region"], "partitionBy": ["region"]})
    jobs.apply(job)
    status = jobs.succeeded("s3-spark")
    got = read(lake["fs"], "lake/out/s3-spark")
    keep = pc.not_equal(lake["regional"]["region"], "apac")
    want_ids = lake["regional"].filter(keep)["id"].to_numpy()
    assert status["result"]["rowsOut"] == len(want_ids) == got.num_rows
    np.testing.assert_array_equal(np.sort(got["id"].to_numpy()), np.sort(want_ids))
    ref = reference["table"]
    expected = ref.filter(pc.is_in(ref["id"], pa.array(got["id"].to_numpy())))["score"].to_numpy()
    np.testing.assert_allclose(got["score"].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    lake["fs"].invalidate_cache()
    dirs = sorted({f.split("/")[3] for f in lake["fs"].find("lake/out/s3-spark") if f.endswith(".parquet")})
    assert dirs == ["region=eu", "region=us"]
    manifest = json.loads(lake["fs"].cat_file("lake/out/s3-spark/_tfscore.json"))
    assert (manifest["reader"], manifest["writer"]) == ("spark", "spark")
