"""The commit killed between every two of its steps, on a real S3 server (SeaweedFS), for each mode; then the next
attempt. A fresh process commits staged Parquet files (runtime/commit.py, exactly as a run's last step does) and is
SIGKILLed at the named step; the next attempt of the same job completes the interrupted commit (or commits afresh),
and the final output must be exactly the old one or exactly the new one — never a mix, never nothing, never a row twice.
One case runs the whole `tfscore run` too. `pytest -s` prints the table (mode × kill point → outcome)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid

import pyarrow.parquet as pq
import pytest

from harness.runtime import FEATURES, job_doc, tfscore
from tfscore import testing
from tfscore.runtime import commit

POINTS = ["before-journal", "after-journal", "after-first-move", "after-moves", "after-first-delete", "before-manifest",
          "after-manifest"]
MODES = ["errorIfExists", "overwrite", "append"]
OUTCOMES: list[tuple[str, str, str, str]] = []

# One attempt: recover; if this job already committed, say so; else stage `rows` (two files) and commit them.
ATTEMPT = r"""
import io, json, sys
import pyarrow as pa, pyarrow.parquet as pq
from tfscore.runtime import commit, storage
a = json.loads(sys.argv[1])
run_id = commit.new_run_id(a["owner"])
target = commit.Target("output.uri", a["out"], commit.staging_uri(a["out"], run_id, "out"))
c = commit.Committer(target, None, a["mode"], a["owner"], run_id, job=a["job"])
done = c.recover()
for note in c.notes:
    print("NOTE " + note)
if done is not None:
    print("DONE " + json.dumps(done)); sys.exit(0)
c.check_target(); c.acquire()
fs, staging = storage.filesystem(target.staging, "output.uri")
files = []
for k, chunk in enumerate((a["rows"][: len(a["rows"]) // 2], a["rows"][len(a["rows"]) // 2:])):
    path = f"{staging}/_attempts/part-{k:05d}-{run_id}.parquet"
    buf = io.BytesIO(); pq.write_table(pa.table({"id": chunk}), buf); fs.pipe_file(path, buf.getvalue())
    files.append(storage.with_protocol(fs, path))
c.commit({"output.uri": files}, {"rowsOut": len(a["rows"])}, {"job": a["job"], "result": {"rowsOut": len(a["rows"])}})
print("COMMITTED")
"""


def attempt(out: str, mode: str, owner: str, rows: list[int], kill: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, commit.KILL_AT: kill or ""}
    args = json.dumps({"out": out, "mode": mode, "owner": owner, "rows": rows, "job": owner[:8]})
    return subprocess.run([sys.executable, "-c", ATTEMPT, args], env=env, capture_output=True, text=True, timeout=120)


def ids(fs, prefix: str) -> list[int]:
    fs.invalidate_cache()
    files = [f for f in fs.find(prefix) if f.endswith(".parquet")] if fs.exists(prefix) else []
    return sorted(i for f in files for i in pq.read_table(io.BytesIO(fs.cat_file(f)))["id"].to_pylist())


def leftovers(fs, bucket: str, name: str) -> list[str]:
    fs.invalidate_cache()
    return [f for f in fs.find(bucket) if f.split("/")[1].startswith(f".{name}.tfscore-")]


@pytest.fixture(scope="module")
def s3(seaweed):
    import s3fs

    seaweed.make_bucket("commits")
    return s3fs.S3FileSystem()


OLD, NEW = list(range(100, 104)), list(range(10))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("point", POINTS)
def test_killed_commit_then_the_next_attempt(s3, mode, point):
    if point == "after-first-delete" and mode != "overwrite":
        pytest.skip("only overwrite deletes old files")
    name = f"{mode.lower()}-{point}"
    out, owner = f"s3://commits/{name}", str(uuid.uuid4())
    if mode != "errorIfExists":
        assert attempt(out, "errorIfExists", str(uuid.uuid4()), OLD).returncode == 0  # another job's earlier output
    first = attempt(out, mode, owner, NEW, kill=point)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    between = ids(s3, f"commits/{name}")
    second = attempt(out, mode, owner, NEW)
    assert second.returncode == 0, second.stderr[-3000:]
    final = ids(s3, f"commits/{name}")
    want = {"errorIfExists": NEW, "overwrite": NEW, "append": sorted(OLD + NEW)}[mode]
    assert final == want, f"{mode} killed {point}: {final}"
    assert s3.exists(f"commits/{name}/_tfscore.json") and not leftovers(s3, "commits", name)
    if point == "before-journal" and mode != "errorIfExists":
        assert between == OLD, "killed before the journal: the old output is untouched"
    if "DONE" in second.stdout:
        how = "completed the journal; already committed, nothing scored again"
    else:
        how = "staging of the killed attempt removed; committed afresh"
    OUTCOMES.append((mode, point, f"{len(between)} rows visible in between", f"{how}: {len(final)} rows"))


def test_sigterm_during_the_commit_is_held_until_it_is_done(s3):
    out = "s3://commits/sigterm"
    proc = attempt(out, "errorIfExists", str(uuid.uuid4()), NEW, kill="SIGTERM:after-first-move")
    assert proc.returncode == 0 and "COMMITTED" in proc.stdout, proc.stderr[-2000:]
    assert ids(s3, "commits/sigterm") == NEW and not leftovers(s3, "commits", "sigterm")


def test_two_jobs_never_commit_one_output(s3):
    out = "s3://commits/fenced"
    holder = f"{out}".replace("s3://", "")
    fs = s3
    fs.pipe_file("commits/.fenced.tfscore-lease.json", json.dumps({
        "owner": "other-job", "runId": "x", "attempt": 1, "job": "nightly", "renewedAt": __import__("time").time()}).encode())
    proc = attempt(out, "errorIfExists", str(uuid.uuid4()), NEW)
    assert proc.returncode != 0 and "is being written by nightly" in proc.stderr and not fs.exists(holder)


def test_a_whole_run_killed_mid_commit_appends_once(models, seaweed, s3, tmp_path):
    """`tfscore run` (append) SIGKILLed after its first file moved; the next attempt (same uid) completes that commit
    and does not score again: every input row is in the output exactly once."""
    import yaml

    inp = testing.write_parquet(tmp_path / "in", testing.tabular_columns(2000, 8))
    doc = job_doc(models["mlp"], inp, "s3://commits/run-append", input={"columns": {"features": FEATURES}},
                  output={"mode": "append", "passthrough": ["id"]})
    doc["metadata"]["uid"] = str(uuid.uuid4())
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    env = {**os.environ, "TFSCORE_CACHE": str(tmp_path / "cache")}
    killed = tfscore("run", manifest, "--master", "local[2]", env={**env, commit.KILL_AT: "after-first-move"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    again = tfscore("run", manifest, "--master", "local[2]", "--json", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "completed the commit of run" in again.stderr and json.loads(again.stdout)["rowsOut"] == 2000
    assert ids(s3, "commits/run-append") == list(range(2000))


def test_print_the_outcomes():
    for row in OUTCOMES:
        print(" | ".join(row))
