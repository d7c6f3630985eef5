"""The command line as a user runs it: a fresh process, a manifest file, exit codes and messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from harness.runtime import FEATURES, TFSCORE, children, job_doc, tfscore
from tfscore import testing

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("engine", ["auto", "spark"])
def test_run_manifest_end_to_end(models, tmp_path, engine):
    """auto runs this plain-Parquet job on the local engine (no JVM); spark on a local Spark session: same output."""
    cols = testing.tabular_columns(5000, 8, seed=12)
    inp = testing.write_parquet(tmp_path / "in", cols, row_group=1000)
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(job_doc(models["mlp"], inp, tmp_path / "out",
                                               input={"columns": {"features": FEATURES}},
                                               output={"passthrough": ["id"], "predictions": {"probability": "p"}})))
    launched = time.time()
    proc = tfscore("run", manifest, "--json", "--master", "local[2]", "--engine", engine)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not [line for line in proc.stderr.splitlines() if any(n in line for n in NOISE)], proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["rowsIn"] == result["rowsOut"] == 5000 and result["model"]["version"] == "2"
    out = pq.read_table(str(tmp_path / "out")).sort_by("id")
    expected = testing.call_signature(str(models["mlp"] / "2"),
                                      {"features": np.stack([cols[c] for c in FEATURES], 1)})["probability"][:, 0]
    np.testing.assert_allclose(out["p"].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    # The timeline counts from the process's start (imports included) and its phases come in order.
    t = result["timeline"]
    order = ["modelResolved", "firstTask", "firstBatch", "lastBatch", "scored", "verified", "committed"]
    assert all(t[k] is not None for k in order), t
    assert 0 < t["modelResolved"] and [t[k] for k in order] == sorted(t[k] for k in order), t
    manifest_record = json.loads((tmp_path / "out" / "_tfscore.json").read_text())
    if engine == "spark":
        assert manifest_record["engine"] == "spark" and t["jvmReady"] is not None, t
        assert t["jvmReady"] <= t["firstTask"] and t["committed"] <= t["jvmReady"] + result["seconds"] + 1, t
        assert t.get("executorsRegistered") is None, t  # a local master's only executor is the driver
    else:  # no JVM at all; both workers ready (TensorFlow imported) before the last batch
        assert manifest_record["engine"] == "local" and t.get("jvmReady") is None, t
        assert t["modelResolved"] < t["executorsRegistered"] <= t["lastBatch"], t
    started = datetime.fromisoformat(t["startedAt"]).timestamp()  # the origin: this process's start
    assert -0.5 < started - launched < 5, (t["startedAt"], launched)
    recorded = manifest_record["result"]["timeline"]
    assert "committed" not in recorded and recorded["firstBatch"] == t["firstBatch"]


def test_summary_and_termination_log(models, tmp_path):
    inp = testing.write_parquet(tmp_path / "in", testing.tabular_columns(100, 8))
    manifest = tmp_path / "job.json"
    manifest.write_text(json.dumps(job_doc(models["mlp"], inp, tmp_path / "out",
                                           input={"columns": {"features": FEATURES}})))
    term = tmp_path / "termination-log"
    proc = tfscore("run", "--spec", manifest, "--termination-log", term)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for needle in ("rows in", "rows out", "rows quarantined", "rows/s", "fingerprint", str(tmp_path / "out")):
        assert needle in proc.stdout, proc.stdout
    written = json.loads(term.read_text())
    assert written["rowsOut"] == 100 and written["model"]["fingerprint"]


def test_failure_exit_code_message_and_termination_log(models, tmp_path):
    inp = testing.write_parquet(tmp_path / "in", testing.tabular_columns(100, 8))
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(job_doc(models["mlp"], inp, tmp_path / "out", model={"version": 9})))
    term = tmp_path / "termination-log"
    proc = tfscore("run", manifest, "--termination-log", term)
    assert proc.returncode == 2
    assert "model.version: version 9 not found" in proc.stderr and "Traceback" not in proc.stderr
    failure = json.loads(term.read_text())  # api.contract.Failure: the operator names the failure by its reason
    assert failure["reason"] == "RunFailed" and failure["message"].startswith("model.version: version 9 not found")


def test_manifest_with_unknown_and_mistyped_fields(models, tmp_path):
    doc = job_doc(models["mlp"], tmp_path, tmp_path / "out")
    doc["spec"]["output"]["mdoe"] = "overwrite"
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    proc = tfscore("run", manifest)
    assert proc.returncode == 2
    assert "spec.output.mdoe: unknown field" in proc.stderr

    doc = job_doc(models["mlp"], tmp_path, tmp_path / "out", batchSize="lots")
    manifest.write_text(yaml.safe_dump(doc))
    proc = tfscore("run", manifest)
    assert proc.returncode == 2 and "spec.batchSize" in proc.stderr and "integer" in proc.stderr

    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    proc = tfscore("run", manifest)
    assert proc.returncode == 2 and "expected apiVersion tfscore.io/v1alpha1 and kind ScoringJob" in proc.stderr

    manifest.write_text("spec: [unclosed\n")
    proc = tfscore("run", manifest)
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr


def test_score_shorthand(models, tmp_path):
    cols = testing.tabular_columns(300, 8, seed=13)
    inp = testing.write_parquet(tmp_path / "in", cols)
    proc = tfscore("score", "--model", models["mlp"], "--input", inp, "--output", tmp_path / "out", "--version", "1",
                   "--columns", "features=" + ",".join(FEATURES), "--passthrough", "id", "--predictions",
                   "probability=risk", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["rowsOut"] == 300
    assert pq.read_table(str(tmp_path / "out")).column_names == ["id", "risk"]


@pytest.mark.parametrize("engine", ["auto", "spark"])
def test_sigterm_while_scoring_discards_the_staging(models, tmp_path, engine):
    """A driver pod deleted mid-run gets SIGTERM (forwarded by tini): the run stops its tasks, removes its staging beside
    the output, commits nothing, and says why (exit 2, termination log). Alike on the local engine, whose worker
    processes are gone when it exits."""
    inp = testing.write_parquet(tmp_path / "in", testing.tabular_columns(300_000, 8), row_group=1000)
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(job_doc(models["mlp"], inp, tmp_path / "out", batchSize=50,
                                               input={"columns": {"features": FEATURES}},
                                               sparkConf={"spark.tfscore.splitRows": "1000"})))
    term = tmp_path / "termination-log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([TFSCORE, "run", str(manifest), "--master", "local[2]", "--termination-log", str(term),
                             "--engine", engine], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".out.tfscore-out-*/_attempts/*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no task output after 300 s"
        time.sleep(0.2)
    assert proc.poll() is None, f"the run ended before it could be interrupted: {proc.stderr.read()[-2000:]}"
    workers = children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    gone_by = time.monotonic() + 20  # the JVM exits when it sees its parent go; the local workers are stopped
    while [pid for pid in workers if _alive(pid)] and time.monotonic() < gone_by:
        time.sleep(0.2)
    assert workers and not [pid for pid in workers if _alive(pid)], (workers, "outlived the run")
    assert proc.returncode == 2, err[-3000:]
    assert "terminated (SIGTERM" in err and "nothing was committed" in term.read_text()
    assert json.loads(term.read_text())["reason"] == "Terminated"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "job.yaml", "termination-log"], list(tmp_path.iterdir())


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_example_manifests_are_valid_and_demo_matches():
    from tfscore.api.manifest import load_any
    from tfscore.runtime.demo import demo_job_yaml

    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        load_any(path)  # a ScoringJob or a ScoringSchedule
    assert (ROOT / "examples" / "demo-job.yaml").read_text() == demo_job_yaml(".demo")


# What TensorFlow's C++ logging, the JVM's launcher and Spark's log4j print on a healthy run's start-up.
NOISE = ("oneDNN", "absl", "cpu_feature_guard", "I0000", "W0000", "E0000", "incubator modules", "Setting default log level",
         "setLogLevel", "log4j", " WARN ", "NativeCodeLoader", "SparkContext", "Traceback")


def test_a_run_prints_only_tfscore_lines_and_keeps_the_rest_in_a_log(models, tmp_path):
    """On Spark, whose JVM is the noisy one (the local engine's runs are checked for noise in the end-to-end test)."""
    inp = testing.write_parquet(tmp_path / "in", testing.tabular_columns(2000, 8))
    manifest = tmp_path / "job.yaml"
    for_output = {out: yaml.safe_dump(job_doc(models["mlp"], inp, tmp_path / out, input={"columns": {"features": FEATURES}}))
                  for out in ("out", "out-verbose")}
    manifest.write_text(for_output["out"])
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    proc = tfscore("run", manifest, "--master", "local[2]", "--engine", "spark", env={**env, "TFSCORE_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tfscore: done" in proc.stdout
    noisy = [line for line in proc.stderr.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, noisy
    logs = list((cache / "logs").glob("run-*.log"))
    assert len(logs) == 1 and "incubator modules" in logs[0].read_text()  # the JVM's own line, kept in the log

    manifest.write_text(for_output["out-verbose"])
    verbose = tfscore("run", manifest, "--master", "local[2]", "--engine", "spark", "--verbose",
                      env={**env, "TFSCORE_CACHE": str(cache)})
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "incubator modules" in verbose.stderr and len(list((cache / "logs").glob("run-*.log"))) == 1
