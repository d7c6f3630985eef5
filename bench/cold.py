"""What a user sees: each tool on the same model and files in a FRESH process, wall time from process start to the
output written — the by-hand script, Spark's predict_batch_udf, Ray Data (from the bench's own venv when it is built) and
`tfscore run` (whose timeline says where its time went), on its default engine (these plain-Parquet jobs run on the
local engine, no JVM) and with `--engine spark` (a local Spark session). Rounds interleave the tools so the machine's
noise falls on all alike; the best round of each counts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tfscore import testing

HERE = Path(__file__).resolve().parent
TOOLS = HERE / "tools"
FEATURES = 64
BATCH = 8192


def tfscore_exe() -> str:
    """The `tfscore` a user runs: on PATH, else beside this interpreter (the venv's)."""
    return shutil.which("tfscore") or str(Path(sys.executable).parent / "tfscore")


def job_doc(name: str, model: str, inp: str, out: str, columns: dict, passthrough: list[str], predictions: dict,
            batch: int = BATCH, extra: dict | None = None) -> dict:
    """A bench ScoringJob manifest (overwrite mode: every round writes the same output)."""
    return {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringJob", "metadata": {"name": name},
            "spec": {"model": {"uri": model}, "input": {"uri": inp, "columns": columns},
                     "output": {"uri": out, "mode": "overwrite", "passthrough": passthrough,
                                "predictions": predictions},
                     "batchSize": batch, **(extra or {})}}


def ensure_tabular(work: Path, rows: int) -> tuple[Path, Path, list[str]]:
    """The tabular case: an MLP (64 features, hidden 512, 256) and `rows` rows in 4 Parquet files (made once)."""
    model_root, data = work / "mlp", work / f"tabular-{rows}"
    if not (model_root / "1").exists():
        testing.mlp(model_root, features=FEATURES, hidden=(512, 256))
    if not data.exists():
        testing.write_parquet(data, testing.tabular_columns(rows, FEATURES), row_group=131_072, files=4)
    return model_root, data, [f"f{j:02d}" for j in range(FEATURES)]


def ensure_conv(work: Path, rows: int) -> tuple[Path, Path]:
    """The conv-net case: testing.cnn and `rows` flat 784-float images in 2 Parquet files (made once)."""
    model_root, data = work / "cnn", work / f"images-{rows}"
    if not (model_root / "1").exists():
        testing.cnn(model_root)
    if not data.exists():
        testing.write_parquet(data, {"id": np.arange(rows, dtype=np.int64), "pixels": testing.image_column(rows)},
                              row_group=8192, files=2)
    return model_root, data


def _cases(work: Path, tabular_rows: int, conv_rows: int) -> dict[str, dict]:
    mlp, tab, names = ensure_tabular(work, tabular_rows)
    cnn, img = ensure_conv(work, conv_rows)
    return {
        f"MLP 64 features, {tabular_rows:,} rows": {
            "rows": tabular_rows, "model_root": str(mlp), "model": str(mlp / "1"), "input": str(tab),
            "features": names, "shape": [FEATURES], "feed": "features", "fetch": "probability", "batch": 8192,
            "warm_section": "tabular",
            "columns": {"features": names}, "predictions": {"probability": "score"}},
        f"conv net 28x28, {conv_rows:,} rows": {
            "rows": conv_rows, "model_root": str(cnn), "model": str(cnn / "1"), "input": str(img),
            "features": ["pixels"], "shape": [28, 28, 1], "feed": "image", "fetch": "label", "batch": 1024,
            "warm_section": "conv",
            "columns": {"image": "pixels"}, "predictions": {"label": "score"}},
    }


# tasks × TensorFlow threads on the local engine's 2 cores: `tfscore` runs 2 tasks of 1 thread (the default,
# spark.task.cpus=1); `tfscore_1x2` 1 task of 2 threads, the shape a compute-heavy model might want (README, "How it
# scores"): the bench keeps the measurement that decided the default.
THREADS = {"tfscore_1x2": {"sparkConf": {"spark.task.cpus": "2"}}}


def _tfscore_manifest(case: dict, out: Path, tool: str) -> Path:
    doc = job_doc("bench-cold", case["model_root"], case["input"], str(out), case["columns"], ["id"],
                  case["predictions"], batch=case["batch"], extra=THREADS.get(tool))
    path = out.parent / f"{out.name}.yaml"
    path.write_text(json.dumps(doc))
    return path


def _once(tool: str, case: dict, out: Path, bench_python: str | None) -> tuple[float, dict | None]:
    """One fresh-process run: (wall seconds, tfscore's timeline or None)."""
    shutil.rmtree(out, ignore_errors=True)
    args = json.dumps({**case, "output": str(out)})
    if tool.startswith("tfscore"):
        cmd = [tfscore_exe(), "run", str(_tfscore_manifest(case, out, tool)), "--json",
               "--engine", "spark" if tool == "tfscore_spark" else "auto"]
    else:
        python = bench_python if tool == "ray_data" else sys.executable
        cmd = [python, str(TOOLS / f"{tool}.py"), args]
    launched, t = time.time(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed on {case['input']}: {proc.stderr.strip().splitlines()[-1:]}")
    if tool.startswith("tfscore"):
        return wall, json.loads(proc.stdout)["timeline"]
    if tool == "by_hand":  # its first batch, from the launch: what TensorFlow itself costs a fresh process
        return wall, {"firstBatch": round(json.loads(proc.stdout.splitlines()[-1])["firstBatchAt"] - launched, 3)}
    return wall, None


def cold(work: Path, tabular_rows: int, conv_rows: int, rounds: int, bench_python: str | None) -> dict:
    tools = ["by_hand", "batch_udf", *(["ray_data"] if bench_python else []), "tfscore", "tfscore_spark", *THREADS]
    cases = _cases(work, tabular_rows, conv_rows)
    best: dict[str, dict[str, float]] = {name: {} for name in cases}
    timelines: dict[tuple[str, str], dict] = {}
    for _ in range(rounds):
        for name, case in cases.items():
            for tool in tools:
                wall, timeline = _once(tool, case, work / f"out-cold-{tool}", bench_python)
                if wall < best[name].get(tool, float("inf")):
                    best[name][tool] = wall
                    if timeline is not None:
                        timelines[name, tool] = timeline
    result: dict = {"rounds": rounds, "tools": tools,
                    "ray_data": "ran" if bench_python else "skipped: the bench venv is not built (make bench-venv)",
                    "cases": {}}
    for name, walls in best.items():
        entry = {"rows": cases[name]["rows"], "wall_s": {k: round(v, 2) for k, v in walls.items()},
                 "tfscore_vs_by_hand": round(walls["tfscore"] / walls["by_hand"], 3),
                 "tfscore_spark_vs_by_hand": round(walls["tfscore_spark"] / walls["by_hand"], 3),
                 "one_task_of_two_threads_vs_two_of_one": round(walls["tfscore_1x2"] / walls["tfscore"], 3),
                 "by_hand_first_batch_s": (timelines.get((name, "by_hand")) or {}).get("firstBatch"),
                 "tfscore_timeline": timelines.get((name, "tfscore")),
                 "tfscore_spark_timeline": timelines.get((name, "tfscore_spark"))}
        if "ray_data" in walls:
            entry["tfscore_vs_ray_data"] = round(walls["tfscore"] / walls["ray_data"], 3)
        entry["warm_section"] = cases[name]["warm_section"]
        result["cases"][name] = entry
    return result


def scoring_rate(rows: int, first_batch: float | None, last_batch: float | None) -> float | None:
    """rows/s of a run's scoring phase, its first scored batch to its last (from its timeline): the start-up before it
    and the verification and commit after it excluded. None when the timeline has no such span."""
    if first_batch is None or last_batch is None or last_batch <= first_batch:
        return None
    return rows / (last_batch - first_batch)


def against_raw(results: dict) -> None:
    """Each case's cold scoring rate against raw TensorFlow on numpy in memory (the warm section of the same model,
    measured in the same run): the target "≥ 0.9× raw TF also in a cold run"."""
    for e in results.get("cold", {}).get("cases", {}).values():
        t = e.get("tfscore_timeline") or {}
        rate = scoring_rate(e["rows"], t.get("firstBatch"), t.get("lastBatch"))
        if rate is not None:
            e["tfscore_scoring_rows_s"] = round(rate)
        raw = results.get(e.get("warm_section", ""), {}).get("raw_tf_rows_s")
        if raw and e.get("tfscore_scoring_rows_s"):
            e["tfscore_scoring_vs_raw_tf"] = round(e["tfscore_scoring_rows_s"] / raw, 3)


def report(c: dict) -> None:
    tools = c["tools"]
    print(f"\nfresh processes, wall seconds (best of {c['rounds']} interleaved rounds; {c['ray_data']}); first batch, "
          "seconds after the launch: the by-hand script's, tfscore's (local engine), tfscore's on Spark:")
    print(f"{'case':36}" + "".join(f"{t:>14}" for t in tools) + f"{'vs hand':>9}{'vs ray':>8}"
          + "".join(f"{h:>10}" for h in ("1st: hand", "local", "spark")))
    for name, e in c["cases"].items():
        firsts = [e.get("by_hand_first_batch_s"),
                  *((e.get(f"{t}_timeline") or {}).get("firstBatch") for t in ("tfscore", "tfscore_spark"))]
        print(f"{name:36}" + "".join(f"{e['wall_s'][t]:>14.2f}" for t in tools)
              + f"{e['tfscore_vs_by_hand']:>9.2f}{e.get('tfscore_vs_ray_data', float('nan')):>8.2f}"
              + "".join(f"{f if f is not None else float('nan'):>10.2f}" for f in firsts))
    for name, e in c["cases"].items():
        t, hand_first = e.get("tfscore_timeline") or {}, e.get("by_hand_first_batch_s")
        if hand_first and t.get("lastBatch") and t.get("firstBatch"):
            # The scoring phase alone (first → last batch; the by-hand script's after its first batch, to its end).
            ratio = (e["wall_s"]["by_hand"] - hand_first) / (t["lastBatch"] - t["firstBatch"])
            print(f"{name}: tfscore's scoring phase runs at ×{ratio:.2f} the by-hand script's rows/s after its first "
                  "batch")
        if "tfscore_scoring_vs_raw_tf" in e:
            print(f"{name}: in its fresh process tfscore scored {e['tfscore_scoring_rows_s']:,} rows/s from its first "
                  f"batch to its last: ×{e['tfscore_scoring_vs_raw_tf']} raw TensorFlow on numpy in memory (this run)")
        if "one_task_of_two_threads_vs_two_of_one" in e:
            print(f"{name}: 1 task × 2 TensorFlow threads takes ×{e['one_task_of_two_threads_vs_two_of_one']} the wall "
                  "time of 2 tasks × 1 thread (the default)")
