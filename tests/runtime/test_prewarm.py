"""Warm Python workers (tfscore.runtime.prewarm) served by tfscore's Spark daemon (tfscore.runtime.daemon), with a
real local Spark and real warm processes. Each case is its own process: the daemon module is fixed when the JVM starts.

What a task sees tells which worker ran it: its pid, whether TensorFlow was imported before the task imported it, and
prewarm.SERVED (True only in a warm process that took a connection)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent('''
    import json, os, subprocess, sys, time
    pool, seed, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
    warm = None
    if pool != "-":
        os.environ["TFSCORE_PREWARM_DIR"] = pool
        warm = subprocess.Popen([sys.executable, "-m", "tfscore.runtime.prewarm", pool], stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONHASHSEED": seed})
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.python.daemon.module", "tfscore.runtime.daemon").getOrCreate())
    deadline = time.monotonic() + wait  # until the warm process is listening and done importing
    while pool != "-" and time.monotonic() < deadline and not any(n.endswith(".sock") for n in os.listdir(pool)):
        time.sleep(0.2)

    def report(batches):
        import pyarrow as pa
        had = "tensorflow" in sys.modules
        from tfscore.runtime import prewarm
        total = sum(b.column(0).to_numpy().sum() for b in batches)
        yield pa.RecordBatch.from_pylist([{"r": json.dumps({"pid": os.getpid(), "tf": had, "served": prewarm.SERVED,
                                                            "sum": int(total), "seed": os.environ.get("PYTHONHASHSEED"),
                                                            "cwd": os.getcwd()})}])

    first = [json.loads(r.r) for r in spark.range(100, numPartitions=2).mapInArrow(report, "r string").collect()]
    second = [json.loads(r.r) for r in spark.range(10, numPartitions=1).mapInArrow(report, "r string").collect()]
    spark.stop()
    code = None
    if warm is not None:
        try:
            code = warm.wait(30)
        except subprocess.TimeoutExpired:
            warm.kill()
    print("RESULT" + json.dumps({"first": first, "second": second, "warm_exit": code, "warm_pid": warm and warm.pid}))
''')


def _run(tmp_path: Path, pool: bool, seed: str = "0", wait: float = 60.0) -> dict:
    where = tmp_path / "pool"
    where.mkdir()
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(where) if pool else "-", seed, str(wait)],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT"))
    result = json.loads(line[len("RESULT"):])
    result["stderr"] = out.stderr
    return result


def test_a_warm_worker_serves_the_tasks_with_tensorflow_already_imported_and_ends_with_the_daemon(tmp_path):
    r = _run(tmp_path, pool=True)
    tasks = r["first"] + r["second"]
    assert sum(t["sum"] for t in r["first"]) == sum(range(100)) and r["second"][0]["sum"] == sum(range(10))
    assert {t["pid"] for t in tasks} == {r["warm_pid"]}  # one slot: the warm process ran every task (reused)
    assert all(t["served"] and t["tf"] for t in tasks)
    assert all(t["seed"] == "0" for t in tasks)  # the daemon's environment, adopted
    assert r["warm_exit"] is not None  # the daemon's shutdown ended it with the session
    assert not list((tmp_path / "pool").iterdir())  # its socket is gone: it serves once


def test_a_warm_process_with_another_hash_seed_refuses_and_the_daemon_forks_a_fresh_worker(tmp_path):
    r = _run(tmp_path, pool=True, seed="123")
    tasks = r["first"] + r["second"]
    assert "not serving this worker: another PYTHONHASHSEED" in r["stderr"]
    assert all(not t["served"] and not t["tf"] for t in tasks)
    assert r["warm_pid"] not in {t["pid"] for t in tasks}
    assert sum(t["sum"] for t in r["first"]) == sum(range(100))


def test_without_a_pool_the_daemon_forks_workers_as_pysparks_does(tmp_path):
    r = _run(tmp_path, pool=False)
    tasks = r["first"] + r["second"]
    assert len({t["pid"] for t in tasks}) == 1 and all(not t["served"] and not t["tf"] for t in tasks)
    assert sum(t["sum"] for t in r["first"]) == sum(range(100)) and r["second"][0]["sum"] == sum(range(10))


def test_the_daemon_imports_no_pyspark_and_no_tensorflow():
    # It is on the way to every executor's first task: pyspark's own daemon imports all of pyspark first.
    code = "import sys, tfscore.runtime.daemon; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('pyspark', 'tensorflow', 'pyarrow', 'numpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
