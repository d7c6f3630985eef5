"""bench/results.json → bench/results.png: the fresh-process wall time of every tool per case, and where `tfscore run`'s
time went (its timeline). Runs in the bench's own venv (matplotlib is not a tfscore dependency).

    .venv-bench/bin/python bench/chart.py [results.json] [results.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
PHASES = ["modelResolved", "jvmReady", "executorsRegistered", "executorsChecked", "firstTask", "firstBatch", "lastBatch",
          "scored", "verified", "committed"]
# One colour per phase in every panel; the cluster panel's phases are the runtime's plus the driver's start and the
# Succeeded the bench saw (tests/e2e/bench_cluster.py).
COLOURS = ["driverStarted", *PHASES, "succeededSeen"]


def main(src: Path, dst: Path) -> None:
    r = json.loads(src.read_text())
    cold = r["cold"]
    cases, tools = list(cold["cases"]), cold["tools"]
    cluster = r.get("cluster")
    if cluster:
        fig, (walls, phases, pods) = plt.subplots(1, 3, figsize=(19, 4.8), gridspec_kw={"width_ratios": [3, 2, 2]})
    else:
        fig, (walls, phases) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(tools)
    for i, tool in enumerate(tools):
        values = [cold["cases"][c]["wall_s"].get(tool, 0) for c in cases]
        bars = walls.bar([x + i * width for x in range(len(cases))], values, width, label=tool)
        walls.bar_label(bars, fmt="%.1f", fontsize=8)
    walls.set_xticks([x + width * (len(tools) - 1) / 2 for x in range(len(cases))], cases, fontsize=9)
    walls.set_ylabel("seconds, process start → output written (lower is better)")
    walls.set_title(f"Fresh process, best of {cold['rounds']} interleaved rounds ({r['machine']['cpus']} cores)")
    walls.legend()
    rows = [(case, engine) for case in cases for engine in ("tfscore", "tfscore_spark")]
    _stacked(phases, [cold["cases"][case].get(f"{engine}_timeline") or {} for case, engine in rows], PHASES)
    phases.set_yticks(range(len(rows)), [f"{c.split(',')[0]}\n{'local engine' if e == 'tfscore' else 'Spark'}"
                                         for c, e in rows], fontsize=8)
    phases.set_xlabel("seconds after the process started")
    phases.set_title("`tfscore run`: time to each phase")
    phases.legend(fontsize=8, loc="lower right")
    if cluster:
        _cluster(pods, cluster)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"written: {dst}")


def _stacked(ax, timelines: list[dict], phases: list[str]) -> None:
    """One horizontal bar per timeline, its phases in the order they happened (the model is resolved while the JVM or
    the workers start): each segment ends at its phase; one legend entry per phase."""
    seen: set[str] = set()
    for y, timeline in enumerate(timelines):
        start = 0.0
        for end, phase in sorted((timeline[p], p) for p in phases if timeline.get(p) is not None):
            ax.barh(y, end - start, left=start, label=phase if phase not in seen else None,
                    color=plt.cm.tab20(COLOURS.index(phase)))
            seen.add(phase)
            start = end


def _cluster(ax, cluster: dict) -> None:
    """`make bench-cluster`: each run's phases, in seconds after `kubectl apply`."""
    runs = list(cluster["runs"].items())
    timelines = [run["seconds_after_apply"] for _, run in runs]
    _stacked(ax, timelines, list(dict.fromkeys(k for t in timelines for k in t)))
    ax.set_yticks(range(len(runs)), [f"{k.split('x')[0]} executor(s)\n{r['scoring_rows_per_s']:,} rows/s"
                                     for k, r in runs], fontsize=8)
    ax.axvline(cluster["targets"]["apply_to_first_batch_s_max"], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("seconds after `kubectl apply` (dashed: first-batch target)")
    ax.set_title(f"ScoringJob on the harness cluster ({cluster['rows']:,} rows)")
    ax.legend(fontsize=7, loc="lower right")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.json",
         Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "results.png")
