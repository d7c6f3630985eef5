"""What a finished e2e ScoringJob must show: its status, its driver pods and its output against the local reference run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from e2e_harness import Jobs, on_host, read_scores


def check_output(job: dict[str, Any], volume: Path, reference: dict[str, Any]) -> dict[str, Any]:
    """The job's output: every input id exactly once, predictions equal to the local run's; nothing else beside it."""
    uri = job["spec"]["output"]["uri"]
    out = Path(on_host(uri, volume))
    got, want = read_scores(out), reference["table"]
    rows = reference["result"]["rowsIn"]
    ids = got["id"].to_numpy()
    assert got.num_rows == rows, f"{out}: {got.num_rows} rows, expected {rows}"
    assert np.array_equal(ids, np.arange(rows)), f"{out}: ids are not exactly 0..{rows - 1} once each " \
                                                 f"({len(np.unique(ids))} distinct)"
    assert got.schema.names == want.schema.names, (got.schema, want.schema)
    np.testing.assert_allclose(got["score"].to_numpy(), want["score"].to_numpy(), rtol=1e-6, atol=1e-7,
                               err_msg="predictions differ from the local `tfscore run`")
    manifest = json.loads((out / "_tfscore.json").read_text())
    siblings = sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))
    assert not siblings, f"staging left beside the output: {siblings}"
    return manifest


def check_done(jobs: Jobs, job: dict[str, Any], status: dict[str, Any], volume: Path, reference: dict[str, Any],
               attempts: int = 1, failed: int | None = None) -> None:
    """A Succeeded job: status.result from the driver's termination message, status.model, progress at 100%; `attempts`
    attempts (`failed` of them failures, default all but the last) of which only the last driver pod is left; and its
    output (check_output)."""
    name, rows = job["metadata"]["name"], reference["result"]["rowsIn"]
    result = status.get("result") or {}
    assert (result.get("rowsIn"), result.get("rowsOut"), result.get("rowsQuarantined")) == (rows, rows, 0), result
    assert result.get("outputUri") == job["spec"]["output"]["uri"]
    assert (status.get("model") or {}).get("version") == "1", status.get("model")
    progress = status.get("progress") or {}
    assert progress.get("percent") == 100 and progress.get("rowsScored") == rows, progress
    assert (status["attempts"], status.get("failed", 0)) == (attempts, attempts - 1 if failed is None else failed), status
    drivers = [p["metadata"]["name"] for p in jobs.driver_pods(name)]
    assert drivers == [f"{name}-driver-{attempts}"], f"driver pods: {drivers}"
    manifest = check_output(job, volume, reference)
    # The executors' Python workers came warm from their pods' pools (tfscore.runtime.prewarm), TensorFlow imported
    # while the executor JVMs started.
    check = manifest.get("executorCheck") or {}
    assert check.get("executors", 0) >= 1 and check.get("warmPythonWorkers") == check.get("pythonWorkers"), check
