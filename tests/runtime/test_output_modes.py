"""Output modes under failure: overwrite never destroys the old data, append never duplicates rows on task retries."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.runtime import FEATURES, job_doc
from tfscore import testing


def snapshot(path):
    """Every file under `path` with its content hash (what 'intact' means)."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def fault(spark):
    def inject(value: str):
        spark.conf.set("spark.tfscore.faultInjection", value)

    yield inject
    spark.conf.unset("spark.tfscore.faultInjection")


@pytest.fixture
def data(tmp_path):
    def make(n, seed, offset=0, name="in"):
        cols = testing.tabular_columns(n, 8, seed=seed)
        cols["id"] = cols["id"] + offset
        # Several row groups per file and several files: several tasks, several batches per task.
        return testing.write_parquet(tmp_path / name, cols, row_group=1000, files=4)

    return make


def doc(models, inp, out, mode, writer="auto", **extra):
    return job_doc(models["mlp"], inp, out, batchSize=250, input={"columns": {"features": FEATURES}},
                   output={"mode": mode, "passthrough": ["id"], "writer": writer}, **extra)


def ids(path) -> list[int]:
    return sorted(pq.read_table(str(path), columns=["id"])["id"].to_pylist())


def test_overwrite_replaces_on_success(run, models, tmp_path, data):
    out = tmp_path / "out"
    run(doc(models, data(3000, 1), out, "errorIfExists"))
    run(doc(models, data(500, 2, offset=10_000, name="in2"), out, "overwrite"))
    assert ids(out) == list(range(10_000, 10_500))


@pytest.mark.parametrize("writer", ["arrow", "spark"])
def test_overwrite_keeps_old_data_when_job_fails(run, models, tmp_path, data, fault, writer):
    out = tmp_path / "out"
    run(doc(models, data(3000, 1), out, "errorIfExists"))
    before = snapshot(out)
    fault("partition=1,attempt=*,afterBatches=2")  # every attempt of one task dies mid-way
    with pytest.raises(Exception, match="injected fault"):
        run(doc(models, data(4000, 2, name="in2"), out, "overwrite", writer=writer))
    assert snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if ".tfscore-" in p.name], "staging left behind"


@pytest.mark.parametrize("writer", ["arrow", "spark"])
def test_append_has_no_duplicates_when_a_task_is_retried(run, models, tmp_path, data, fault, writer):
    out = tmp_path / "out"
    run(doc(models, data(2000, 1), out, "errorIfExists", writer=writer))
    fault("partition=0,attempt=0,afterBatches=3")  # the first attempt writes some rows, then dies; Spark retries
    result = run(doc(models, data(4000, 2, offset=100_000, name="in2"), out, "append", writer=writer))
    assert (result.rows_in, result.rows_out) == (4000, 4000)
    got = ids(out)
    assert len(got) == len(set(got)) == 6000
    assert got == list(range(2000)) + list(range(100_000, 104_000))
    # Every score matches a direct call: the retried attempt's half-written rows are nowhere.
    table = pq.read_table(str(out)).sort_by("id")
    assert np.isfinite(table["probability"].to_numpy()).all()


def test_append_failure_adds_nothing(run, models, tmp_path, data, fault):
    out = tmp_path / "out"
    run(doc(models, data(1000, 1), out, "errorIfExists"))
    before = snapshot(out)
    fault("partition=0,attempt=*,afterBatches=1")
    with pytest.raises(Exception, match="injected fault"):
        run(doc(models, data(2000, 2, offset=5000, name="in2"), out, "append"))
    assert snapshot(out) == before


def test_append_records_run_history(run, models, tmp_path, data):
    import json

    out = tmp_path / "out"
    run(doc(models, data(1000, 1), out, "append"))
    run(doc(models, data(1000, 2, offset=1000, name="in2"), out, "append"))
    manifest = json.loads((out / "_tfscore.json").read_text())
    assert manifest["result"]["rowsOut"] == 1000 and len(manifest["history"]) == 1
    assert ids(out) == list(range(2000))


def test_retry_cleans_up_after_a_killed_attempt(run, models, tmp_path, data):
    """A driver killed with no chance to clean up (SIGKILL, OOM, lost node) left staging beside the output; the next
    attempt of the same ScoringJob (same uid) removes it, and another job's staging is left alone."""
    from tfscore.runtime import commit as io

    uid = "5d0c1b2a-0000-4000-8000-00000000abcd"
    out = tmp_path / "out"
    killed = tmp_path / io.staging_uri(str(out), io.new_run_id(uid), "out").rsplit("/", 1)[1] / "_attempts"
    killed.mkdir(parents=True)
    (killed / "part-00000-x.parquet").write_bytes(b"half a file")
    other = tmp_path / io.staging_uri(str(out), io.new_run_id("another-job"), "out").rsplit("/", 1)[1]
    other.mkdir()
    d = doc(models, data(1000, 1), out, "errorIfExists")
    d["metadata"]["uid"] = uid
    run(d)
    assert ids(out) == list(range(1000))
    assert not killed.parent.exists() and other.exists()
