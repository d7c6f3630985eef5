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
PHASES = ["modelResolved", "jvmReady", "firstTask", "firstBatch", "lastBatch", "scored", "verified", "committed"]


def main(src: Path, dst: Path) -> None:
    r = json.loads(src.read_text())
    cold = r["cold"]
    cases, tools = list(cold["cases"]), cold["tools"]
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
    seen: set[str] = set()
    rows = [(case, engine) for case in cases for engine in ("tfscore", "tfscore_spark")]
    for y, (case, engine) in enumerate(rows):
        timeline = cold["cases"][case].get(f"{engine}_timeline") or {}
        start = 0.0
        # In the order they happened (the model is resolved while the JVM or the workers start): each bar ends at its
        # phase.
        for end, phase in sorted((timeline[p], p) for p in PHASES if timeline.get(p) is not None):
            phases.barh(y, end - start, left=start, label=phase if phase not in seen else None,
                        color=f"C{PHASES.index(phase)}")
            seen.add(phase)
            start = end
    phases.set_yticks(range(len(rows)), [f"{c.split(',')[0]}\n{'local engine' if e == 'tfscore' else 'Spark'}"
                                         for c, e in rows], fontsize=8)
    phases.set_xlabel("seconds after the process started")
    phases.set_title("`tfscore run`: time to each phase")
    phases.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"written: {dst}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.json",
         Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "results.png")
