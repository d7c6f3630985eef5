"""`tfscore run schedule.yaml --at TIME` in a fresh process: the run the operator would create for that time, rendered
by the same code, scored locally (Spark local mode, a real SavedModel, real Parquet)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import yaml

from harness.runtime import FEATURES, tfscore
from tfscore import testing


def test_run_renders_the_scheduled_time_and_scores(models, tmp_path):
    testing.write_parquet(tmp_path / "in" / "dt=2026-11-24", testing.tabular_columns(300, 8, seed=3))
    testing.write_parquet(tmp_path / "in" / "dt=2026-11-23", testing.tabular_columns(50, 8, seed=4))
    manifest = tmp_path / "schedule.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringSchedule", "metadata": {"name": "daily"},
        "spec": {"schedule": "0 6 * * *", "timeZone": "Europe/Berlin", "jobTemplate": {"spec": {
            "model": {"uri": str(models["mlp"])},
            "input": {"uri": f"{tmp_path}/in/dt=${{scheduledTime:%Y-%m-%d}}/", "columns": {"features": FEATURES}},
            "output": {"uri": f"{tmp_path}/out/${{scheduleName}}/${{scheduledTime:%Y%m%dT%H%M}}/",
                       "passthrough": ["id"], "predictions": {"probability": "p"}}}}}}))
    proc = tfscore("run", manifest, "--at", "2026-11-24T05:00:00Z", "--json", "--master", "local[2]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tfscore: run daily-29924940 of schedule daily for 2026-11-24T05:00:00Z" in proc.stderr
    result = json.loads(proc.stdout)
    out = tmp_path / "out" / "daily" / "20261124T0600"  # formats use the schedule's zone: 06:00 in Berlin
    assert result["rowsIn"] == result["rowsOut"] == 300 and result["outputUri"].rstrip("/").endswith(str(out))
    assert pq.read_table(str(out)).num_rows == 300
    refused = tfscore("run", manifest, "--at", "2026-11-24 05:00")
    assert refused.returncode == 2 and "--at: '2026-11-24 05:00' has no time zone" in refused.stderr
