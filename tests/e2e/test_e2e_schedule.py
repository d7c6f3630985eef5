"""A ScoringSchedule on the real cluster (the shared install of conftest.py): every minute, incrementally, over Hive
partitions that appear between runs; each row scored once, and the later run's status carries statistics and drift
against the earlier one.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import VOLUME_MOUNT, Jobs, example_docs, timed

from harness.common import wait_for

pytestmark = pytest.mark.e2e
NAME = "e2e-hourly"
ROWS_PER_PARTITION = 75_000  # one of the volume's four input files (e2e_data.py)


def partition(volume: Path, value: int) -> None:
    """hour=<value>/ with one of the input's files, owned by the runtime image's user."""
    from e2e_data import chown_tree

    src = sorted((volume / "input").glob("*.parquet"))[value - 1]
    dest = volume / "sched-input" / f"hour={value}"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest / "part-0.parquet")
    chown_tree(volume / "sched-input")


def schedule_doc() -> dict[str, Any]:
    job = example_docs()["ScoringJob"]["spec"]
    job["input"] = {**job["input"], "uri": f"{VOLUME_MOUNT}/sched-input", "incremental": {"partitionKey": "hour"}}
    job["output"] = {**job["output"], "uri": f"{VOLUME_MOUNT}/out/{NAME}/${{scheduledTime:%H%M}}"}
    return {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringSchedule", "metadata": {"name": NAME},
            "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid", "successfulRunsHistoryLimit": 10,
                     "driftPolicy": {"metric": "psi", "action": "warn"}, "jobTemplate": {"spec": job}}}


def runs(jobs: Jobs) -> list[dict[str, Any]]:
    items = json.loads(jobs("get", "scoringjobs", "-l", f"tfscore.io/schedule={NAME}", "-o", "json").stdout)["items"]
    return sorted(items, key=lambda j: j["metadata"]["annotations"]["tfscore.io/scheduled-time"])


def finished(jobs: Jobs, after: int = 0) -> list[dict[str, Any]]:
    return [r for r in runs(jobs)[after:] if (r.get("status") or {}).get("phase") in ("Succeeded", "Failed")]


def test_schedule_runs_twice_incrementally_with_statistics_and_drift(jobs: Jobs, volume: Path) -> None:
    shutil.rmtree(volume / "sched-input", ignore_errors=True)
    partition(volume, 1)
    with timed("schedule: two incremental runs"):
        jobs.apply(schedule_doc())
        try:
            first = wait_for("the first run to finish", lambda: finished(jobs), timeout=300, interval=2)[0]
            partition(volume, 2)  # appears between runs
            later = wait_for("a later run that scored something", lambda: [
                r for r in finished(jobs) if r["metadata"]["name"] != first["metadata"]["name"]
                and ((r["status"].get("result") or {}).get("incremental") or {}).get("partitions")],
                timeout=300, interval=2)[0]
        finally:
            jobs("patch", "scoringschedule", NAME, "--type=merge", "-p", '{"spec": {"suspend": true}}')
    assert first["status"]["phase"] == "Succeeded", first["status"]
    one, two = first["status"]["result"], later["status"]["result"]
    assert one["incremental"]["partitions"] == ["1"] and two["incremental"]["partitions"] == ["2"]
    assert one["rowsOut"] == two["rowsOut"] == ROWS_PER_PARTITION
    scored = sum((r["status"].get("result") or {}).get("rowsOut", 0) for r in finished(jobs))
    assert scored == 2 * ROWS_PER_PARTITION, "every row scored once"
    assert later["spec"]["drift"]["referenceUri"] == one["outputUri"]
    stats = two["statistics"]
    assert stats["columns"]["score"]["count"] == ROWS_PER_PARTITION and "p50" in stats["columns"]["score"]["quantiles"]
    assert stats["drift"]["score"]["metric"] == "psi" and stats["drift"]["score"]["value"] >= 0
    time.sleep(2)
    status = json.loads(jobs("get", "scoringschedule", NAME, "-o", "json").stdout)["status"]
    assert status["incremental"]["watermark"] == "2"
    record = next(r for r in status["recentRuns"] if r["name"] == later["metadata"]["name"])
    assert record["partitions"] == ["2"] and record["statistics"]["score"]["count"] == ROWS_PER_PARTITION
    assert "score" in record["drift"]
    jobs("delete", "scoringschedule", NAME, "--wait=true")
