"""The commit protocol on a local filesystem (runtime/commit.py): modes, the journal completed after an interruption,
the marker, ownership of staging, and the lease. The same protocol is killed at every step on a real S3 server in the
runtime tier (tests/runtime/test_commit_faults.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tfscore.runtime import commit, storage
from tfscore.runtime.errors import TfscoreError

UID = "0b5e2a4c-9d1f-4e3b-8a7c-123456789abc"


def committer(out: Path, mode: str, owner: str = UID, quarantine: Path | None = None) -> commit.Committer:
    run_id = commit.new_run_id(owner)
    q = commit.Target("quarantineUri", str(quarantine), commit.staging_uri(str(quarantine), run_id, "q")) \
        if quarantine else None
    return commit.Committer(commit.Target("output.uri", str(out), commit.staging_uri(str(out), run_id, "out")), q,
                            mode, owner, run_id, job="j")


def staged(c: commit.Committer, ids: list[int], name: str | None = None) -> dict[str, list[str]]:
    stage = Path(c.output.staging) / "_attempts"
    stage.mkdir(parents=True, exist_ok=True)
    f = stage / (name or f"part-{ids[0]}-{c.run_id}.parquet")
    pq.write_table(pa.table({"id": ids}), f)
    return {"output.uri": [str(f)]}


def run(out: Path, mode: str, ids: list[int], owner: str = UID) -> commit.Committer:
    c = committer(out, mode, owner)
    assert c.recover() is None
    c.check_target()
    c.acquire()
    c.commit(staged(c, ids), {"rowsOut": len(ids)}, {"job": "j", "result": {"rowsOut": len(ids)}})
    return c


def ids(out: Path) -> list[int]:
    return sorted(pq.read_table(str(out))["id"].to_pylist())


def test_modes_and_the_marker(tmp_path):
    out = tmp_path / "out"
    run(out, "errorIfExists", [1, 2], owner="a")
    assert ids(out) == [1, 2] and (out / commit.MANIFEST).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no staging, journal or lease left"
    with pytest.raises(TfscoreError, match="already exists"):
        committer(out, "errorIfExists", "b").check_target()
    run(out, "append", [3], owner="b")
    doc = json.loads((out / commit.MANIFEST).read_text())
    assert ids(out) == [1, 2, 3] and doc["owner"] == "b" and [h["owner"] for h in doc["history"]] == ["a"]
    run(out, "overwrite", [9], owner="c")
    assert ids(out) == [9] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_only_replaces_a_tfscore_output(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "precious.csv").write_text("1\n")
    with pytest.raises(TfscoreError, match="holds data tfscore did not write"):
        committer(out, "overwrite").check_target()
    assert (out / "precious.csv").exists()


def test_append_never_overwrites_a_file(tmp_path):
    out = tmp_path / "out"
    c = run(out, "append", [1], owner="a")
    second = committer(out, "append", "b")
    second.acquire()
    with pytest.raises(TfscoreError, match="append never overwrites"):
        second.commit(staged(second, [1], name=f"part-1-{c.run_id}.parquet"), {}, {})


def test_an_interrupted_commit_is_completed_and_counts_as_done(tmp_path, monkeypatch):
    out = tmp_path / "out"
    run(out, "errorIfExists", [1], owner="old")
    c = committer(out, "overwrite")
    c.acquire()
    files = staged(c, [7, 8])
    real_remove = storage.remove

    def killed(fs, path):  # the driver dies while deleting the old files
        if path.endswith(".parquet") and "tfscore-out" not in path:
            raise KeyboardInterrupt("SIGKILL")
        real_remove(fs, path)

    monkeypatch.setattr(storage, "remove", killed)
    with pytest.raises(KeyboardInterrupt):
        c.commit(files, {"rowsOut": 2}, {"result": {"rowsOut": 2}})
    monkeypatch.setattr(storage, "remove", real_remove)
    assert (tmp_path / ".out.tfscore-journal.json").exists()
    other = committer(out, "overwrite", owner="someone-else")
    assert other.recover() is None and ids(out) == [7, 8], "any later run completes the journal first"
    again = committer(out, "overwrite")
    assert again.recover() == {"rowsOut": 2}, "the same job: already committed, nothing to score again"


def test_recover_removes_only_this_jobs_staging(tmp_path):
    out = tmp_path / "out"
    stale = Path(commit.staging_uri(str(out), commit.new_run_id(UID), "out")) / "_attempts"
    other = Path(commit.staging_uri(str(out), commit.new_run_id("ffffffff-0000-0000-0000-000000000000"), "out"))
    stale.mkdir(parents=True)
    other.mkdir(parents=True)
    c = committer(out, "errorIfExists")
    assert c.recover() is None and not stale.parent.exists() and other.exists()
    assert c.notes == [f"removed {stale.parent.name} left by an earlier attempt"]


def test_the_lease_fences_other_jobs_and_stale_attempts(tmp_path):
    out = tmp_path / "out"
    first = committer(out, "errorIfExists", owner="job-a")
    first.acquire()
    with pytest.raises(TfscoreError, match="is being written by j"):
        committer(out, "errorIfExists", owner="job-b").acquire()
    retry = committer(out, "errorIfExists", owner="job-a")  # the next attempt of the same job takes over
    retry.acquire()
    with pytest.raises(TfscoreError, match="took over .* this \\(stale\\) attempt commits nothing"):
        first.commit(staged(first, [1]), {}, {})
    lease = tmp_path / ".out.tfscore-lease.json"
    doc = json.loads(lease.read_text())
    lease.write_text(json.dumps({**doc, "renewedAt": time.time() - commit.LEASE_SECONDS - 1}))
    committer(out, "errorIfExists", owner="job-c").acquire()  # a dead run's lease is taken over


def test_quarantine_commits_with_the_output(tmp_path):
    out, q = tmp_path / "out", tmp_path / "q"
    c = committer(out, "errorIfExists", quarantine=q)
    c.acquire()
    qfile = Path(c.quarantine.staging) / "_attempts" / "bad.parquet"
    qfile.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": [5]}), qfile)
    c.commit({**staged(c, [1]), "quarantineUri": [str(qfile)]}, {}, {})
    assert ids(out) == [1] and ids(q) == [5] and sorted(p.name for p in tmp_path.iterdir()) == ["out", "q"]
