"""The executors' one-image check on a real local Spark (TFSCORE_CHECK_EXECUTORS=1; a cluster master turns it on by
itself), as `tfscore run` runs it: beside the driver's planning, with the scoring job submitted behind it."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import yaml

from harness.runtime import FEATURES, job_doc, tfscore
from tfscore import testing
from tfscore.runtime.doctor import facts


def _job(tmp_path, models, **spark_conf) -> tuple:
    inp = testing.write_parquet(tmp_path / "in", testing.tabular_columns(4000, 8, seed=3), row_group=500)
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(job_doc(models["mlp"], inp, tmp_path / "out", sparkConf=spark_conf,
                                               input={"columns": {"features": FEATURES}})))
    return manifest, tmp_path / "out"


def test_a_passing_check_records_what_it_saw_and_the_run_scores(models, tmp_path):
    manifest, out = _job(tmp_path, models)
    proc = tfscore("run", manifest, "--json", "--master", "local[2]", "--engine", "spark",
                   env={**os.environ, "TFSCORE_CHECK_EXECUTORS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["rowsOut"] == 4000 and result["timeline"]["executorsChecked"] is not None, result["timeline"]
    check = json.loads((out / "_tfscore.json").read_text())["executorCheck"]
    # local[2]: the driver is the one executor; its workers were forked here (no pool of warm ones on a laptop)
    assert check["executors"] == 1 and check["pythonWorkers"] >= 1 and check["warmPythonWorkers"] == 0, check


def test_an_executor_drifting_from_its_image_fails_the_run_with_the_checks_sentence_and_commits_nothing(models,
                                                                                                          tmp_path):
    # The executors (here: the Python workers of local mode) read another manifest than the driver: one recording a
    # pyarrow this environment does not have. The scoring job was already submitted behind the check; it is cancelled.
    drifted = tmp_path / "image-manifest.json"
    facts.write_manifest(drifted, {**facts.facts(), "pyarrow": "1.0.0", "image": "localhost/tfscore/runtime:other"})
    manifest, out = _job(tmp_path, models, **{"spark.executorEnv.TFSCORE_IMAGE_MANIFEST": str(drifted)})
    proc = tfscore("run", manifest, "--master", "local[2]", "--engine", "spark",
                   env={**os.environ, "TFSCORE_CHECK_EXECUTORS": "1"})
    assert proc.returncode == 2, proc.stderr[-3000:]
    error = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")][-1]
    assert error.startswith("error: executor driver on ") and "pyarrow" in error, error
    assert "Traceback" not in proc.stderr
    assert not out.exists(), list(out.iterdir())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no staging left beside it
    assert pq.read_table(str(tmp_path / "in")).num_rows == 4000  # the input untouched
