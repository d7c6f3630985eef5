"""The local engine (no JVM) as a user meets it: retries as Spark's local[N,F] makes them, a data error stopping the run
with its sentence, a worker killed mid-run, and `--engine local` refused for a job that needs Spark. Its output equals
Spark's: tests/runtime/test_parity.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from harness.runtime import FEATURES, TFSCORE, children, job_doc, tfscore
from tfscore import testing
from tfscore.api.manifest import parse
from tfscore.runtime.errors import InvalidRowError
from tfscore.runtime.job import RunOptions, run_job


def _local(doc, master: str = "local[2]"):
    return run_job(parse(doc, "test"), RunOptions(master=master, engine="local"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("local-engine")
    return testing.write_parquet(root / "in", testing.tabular_columns(4000, 8, seed=21), row_group=500)


def _doc(models, inp, out, **spec):
    return job_doc(models["mlp"], inp, out, **{"input": {"columns": {"features": FEATURES}},
                                                 "output": {"passthrough": ["id"]},
                                                 "sparkConf": {"spark.tfscore.splitRows": "500"}, "batchSize": 100, **spec})


def test_a_failed_attempt_is_retried_under_local_n_f_and_only_the_counted_attempt_is_committed(models, data, tmp_path):
    doc = _doc(models, data, tmp_path / "out", sparkConf={"spark.tfscore.splitRows": "500",
                                                         "spark.tfscore.faultInjection": "partition=1,afterBatches=1"})
    result = _local(doc, "local[2,2]")
    assert result.rows_in == result.rows_out == 4000
    files = sorted(p.name for p in (tmp_path / "out").glob("part-*.parquet"))
    assert len(files) == 8 and [f for f in files if f.startswith("part-00001-")][0].split("-")[3] == "a1", files
    assert pq.read_table(tmp_path / "out").num_rows == 4000  # the failed attempt's half-written file is not there


def test_without_retries_the_failure_is_one_sentence_and_nothing_is_left(models, data, tmp_path):
    doc = _doc(models, data, tmp_path / "out", sparkConf={"spark.tfscore.splitRows": "500",
                                                         "spark.tfscore.faultInjection": "partition=1,afterBatches=1"})
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    proc = tfscore("run", manifest, "--master", "local[2]")
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "injected fault: partition 1 attempt 0" in last and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.yaml"]


def test_a_data_error_stops_the_run_naming_the_column_and_file(models, tmp_path):
    cols = {k: pa.array(v) for k, v in testing.tabular_columns(3000, 8, seed=3).items()}
    f03 = cols["f03"].to_pylist()
    f03[2100] = None
    cols["f03"] = pa.array(f03, pa.float32())
    inp = testing.write_parquet(tmp_path / "bad", cols, row_group=500)
    with pytest.raises(InvalidRowError, match=r"column 'f03' is null at row 2100 of .*bad.*\(id=2100\)"):
        _local(_doc(models, inp, tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


def test_a_killed_worker_fails_the_run_with_a_sentence_and_nothing_is_left(models, tmp_path):
    inp = testing.write_parquet(tmp_path / "in", testing.tabular_columns(200_000, 8), row_group=1000)
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(job_doc(models["mlp"], inp, tmp_path / "out", batchSize=50,
                                               input={"columns": {"features": FEATURES}},
                                               sparkConf={"spark.tfscore.splitRows": "1000"})))
    proc = subprocess.Popen([TFSCORE, "run", str(manifest), "--master", "local[2]", "--engine", "local"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.tfscore-out-*/_attempts/*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no task output after 120 s"
        time.sleep(0.1)
    workers = [p for p in children(proc.pid) if b"spawn_main" in open(f"/proc/{p}/cmdline", "rb").read()]  # no tracker
    assert workers, "no worker processes"
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-2000:]
    assert "a local scoring worker died" in err.strip().splitlines()[-1] and "Traceback" not in err, err[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "job.yaml"]


def test_engine_local_is_refused_for_a_job_that_needs_spark_and_auto_runs_it_on_spark(models, data, tmp_path):
    doc = _doc(models, data, tmp_path / "out", output={"format": "json", "passthrough": ["id"]})
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    proc = tfscore("run", manifest, "--master", "local[2]", "--engine", "local")
    assert proc.returncode == 2 and "--engine local: this run needs Spark: its output needs Spark's writer" in \
        proc.stderr.strip().splitlines()[-1], proc.stderr[-2000:]
    assert not (tmp_path / "out").exists()
    proc = tfscore("run", manifest, "--master", "local[2]", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "_tfscore.json").read_text())["engine"] == "spark"
