"""Staging, commit modes, split planning and run manifests on a local filesystem (runtime/io.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tfscore.runtime import io
from tfscore.runtime.errors import TfscoreError


def schema(**fields):
    return pa.schema([pa.field(k, v) for k, v in fields.items()])


def _write(path: Path, ids):
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": ids}), path / f"part-{ids[0]}.parquet")


def test_commit_modes(tmp_path):
    final = tmp_path / "out"
    s1 = tmp_path / "s1"
    _write(s1, [1, 2])
    io.commit(str(s1), str(final), "errorIfExists", "r1")
    assert not s1.exists() and io.count_rows(str(final), "parquet") == 2

    s2 = tmp_path / "s2"
    _write(s2, [3])
    io.commit(str(s2), str(final), "append", "r2")
    assert io.count_rows(str(final), "parquet") == 3

    s3 = tmp_path / "s3"
    _write(s3, [9])
    with pytest.raises(TfscoreError, match="appeared while the job ran"):
        io.commit(str(s3), str(final), "errorIfExists", "r3")
    assert io.count_rows(str(final), "parquet") == 3 and s3.exists()
    io.commit(str(s3), str(final), "overwrite", "r3")
    assert sorted(pq.read_table(str(final))["id"].to_pylist()) == [9]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_append_never_overwrites_a_file(tmp_path):
    final, stage = tmp_path / "out", tmp_path / "stage"
    _write(final, [1])
    _write(stage, [1])
    with pytest.raises(TfscoreError, match="append never overwrites"):
        io.commit(str(stage), str(final), "append", "r")


def test_promote_keeps_only_counted_attempts(tmp_path):
    stage = tmp_path / "stage"
    attempts = stage / "_attempts"
    _write(attempts, [1])
    _write(attempts, [2])  # the file of a failed attempt
    io.promote(str(stage), [str(attempts / "part-1.parquet")], "output.uri")
    assert sorted(p.name for p in stage.iterdir()) == ["part-1.parquet"]
    empty = tmp_path / "empty"
    io.promote(str(empty), [], "output.uri", empty_schema=pa.schema([("id", pa.int64())]))
    assert pq.read_table(str(empty)).schema.names == ["id"]


def test_plan_splits_row_groups(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"id": np.arange(10_000)}), d / "a.parquet", row_group_size=1000)
    pq.write_table(pa.table({"id": np.arange(500)}), d / "b.parquet")
    (d / "_SUCCESS").write_text("")
    (d / ".hidden").write_text("")
    plan = io.plan_parquet(str(d), ["id"], parallelism=2, min_rows=1, split_rows=3000)
    assert plan.rows == 10_500 and plan.files == 2
    assert [s.rows for s in plan.splits] == [3000, 3000, 3000, 1000, 500]
    assert [s.first_row for s in plan.splits] == [0, 3000, 6000, 9000, 0]


def test_plan_rejects_schema_drift(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"x": np.arange(3, dtype=np.int64)}), d / "a.parquet")
    pq.write_table(pa.table({"x": ["a", "b"]}), d / "b.parquet")
    with pytest.raises(TfscoreError, match="column 'x' is int64 in .*a.parquet but string in .*b.parquet"):
        io.plan_parquet(str(d), ["x"], 1, 1)


def test_manifest_history(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    io.write_manifest(str(out), {"run": 1}, "append")
    io.write_manifest(str(out), {"run": 2}, "append")
    doc = json.loads((out / io.MANIFEST).read_text())
    assert doc["run"] == 2 and doc["history"] == [{"run": 1}]


def test_spark_uri():
    assert io.spark_uri("/data/x") == "file:///data/x"
    assert io.spark_uri("s3://b/k") == "s3a://b/k"
    assert io.spark_uri("hdfs://nn/x") == "hdfs://nn/x"


def test_recover_after_killed_attempts(tmp_path):
    uid = "0b5e2a4c-9d1f-4e3b-8a7c-123456789abc"
    final = tmp_path / "out"
    stale = io.staging_uri(str(final), io.new_run_id(uid), "out")
    other_job = io.staging_uri(str(final), io.new_run_id("ffffffff-0000-0000-0000-000000000000"), "out")
    for d in (stale, other_job):
        _write(Path(d) / "_attempts", [1])
    # An overwrite killed between its two renames: the old output sits aside, the output itself is gone.
    aside = io.staging_uri(str(final), io.new_run_id(uid), "old")
    _write(Path(aside), [7, 8])
    done = io.recover(str(final), uid)
    assert len(done) == 2 and any("restored" in d for d in done)
    assert sorted(pq.read_table(str(final))["id"].to_pylist()) == [7, 8]
    assert not Path(stale).exists() and not Path(aside).exists()
    assert Path(other_job).exists(), "another job's staging is not ours to touch"
    # Killed after the new output was in place: the aside copy is the stale one.
    aside2 = io.staging_uri(str(final), io.new_run_id(uid), "old")
    _write(Path(aside2), [1])
    assert io.recover(str(final), uid) == [f"removed {Path(aside2).name} left by an earlier attempt"]
    assert sorted(pq.read_table(str(final))["id"].to_pylist()) == [7, 8]
    assert io.recover(str(final), "") == []
