"""`make bench-cluster`: the cluster path as a user meets it, on the e2e tier's cluster, release and data volume (the
fixtures of conftest.py; not collected by the e2e tier, whose files are test_*.py).

The e2e volume's MLP (16 → 512 → 512 → 1) over its rows (1,200,000 under `make bench-cluster`: TFSCORE_E2E_ROWS), with
the job's own defaults (batch size, splits), as `kubectl apply` of a ScoringJob with 1 executor and with 2 executors of
1 core, rounds interleaved. For each run: seconds from `kubectl apply` to the driver process's start, to every phase of
the driver's timeline (status.result.timeline: JVM ready, executors registered, first task, first batch, last batch,
committed) and to the Succeeded a poll of the status sees; and the scoring rate, rows / (last batch − first batch): the
executors start their first tasks, and their imports, together, so the rate compares 1 and 2 executors at work. The
best run of each shape (by apply → Succeeded) goes to bench/results.json under `cluster`; `bench/run.py --report`
prints it and bench/chart.py draws it.
    make bench-cluster              (TFSCORE_BENCH_CLUSTER_ROUNDS=2 for two rounds)
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from e2e_harness import ROWS, Image, Jobs, job_manifest

from harness.common import ROOT

RESULTS = ROOT / "bench" / "results.json"
ROUNDS = int(os.environ.get("TFSCORE_BENCH_CLUSTER_ROUNDS", "1"))
SHAPES = (1, 2)  # executors of 1 core
PHASES = ("jvmReady", "executorsRegistered", "executorsChecked", "firstTask", "firstBatch", "lastBatch", "committed")


def _job(name: str, executors: int) -> dict[str, Any]:
    job = job_manifest(name)
    spec = job["spec"]
    spec.pop("batchSize", None)  # the example's small batches and splits make a run long enough to break on purpose;
    spec["sparkConf"].pop("spark.tfscore.splitRows", None)  # the bench runs the job's defaults, as a user would
    spec["executor"] = {**spec["executor"], "instances": executors, "cores": 1}
    return job


def _once(jobs: Jobs, volume: Path, executors: int) -> dict[str, Any]:
    name = f"bench-{executors}x"
    jobs("delete", "scoringjob", name, "--ignore-not-found", "--wait=true", "--timeout=120s")
    applied = time.time()
    jobs.apply(_job(name, executors))
    status = jobs.succeeded(name, timeout=600)
    seen = time.time()  # the poll (1 s) that saw Succeeded
    result = status["result"]
    timeline = result["timeline"]
    origin = datetime.fromisoformat(timeline["startedAt"]).timestamp()
    after_apply = {"driverStarted": round(origin - applied, 2),
                   **{p: round(origin + timeline[p] - applied, 2) for p in PHASES if timeline.get(p) is not None},
                   "succeededSeen": round(seen - applied, 2)}
    span = timeline["lastBatch"] - timeline["firstBatch"]  # every executor's first task (its imports) began together
    jobs("delete", "scoringjob", name, "--wait=true", "--timeout=120s")
    out = volume / "out" / name
    files = len(list(out.glob("part-*")))
    shutil.rmtree(out)  # the next round's job of this name writes there again (output.mode errorIfExists)
    return {"executors": executors, "rows": result["rowsIn"], "seconds_after_apply": after_apply,
            "scoring_rows_per_s": round(result["rowsIn"] / span) if span > 0 else None, "timeline": timeline,
            "output_files": files}


def test_bench_cluster(jobs: Jobs, volume: Path, images: dict[str, Image]) -> None:
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in SHAPES}
    for _ in range(ROUNDS):
        for n in SHAPES:
            run = _once(jobs, volume, n)
            assert run["rows"] == ROWS and run["output_files"] > 0, run
            runs[n].append(run)
    best = {n: min(rs, key=lambda r: r["seconds_after_apply"]["succeededSeen"]) for n, rs in runs.items()}
    one, two = best[1]["scoring_rows_per_s"], best[2]["scoring_rows_per_s"]
    section = {"rounds": ROUNDS, "rows": ROWS, "runtime_image": images["runtime"].ref,
               "node": {"cpus": os.cpu_count(), "machine": platform.machine()},
               "runs": {f"{n}x1core": best[n] for n in SHAPES},
               "two_vs_one_executor_rows_per_s": round(two / one, 3) if one and two else None,
               "targets": {"apply_to_first_batch_s_max": 30.0, "two_vs_one_min": 1.5}}
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["cluster"] = section
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
