"""One image everywhere: the driver checks itself against its image manifest and asks every executor for its own.

A job (when the master is not local, or TFSCORE_CHECK_EXECUTORS=1) fails fast on the first difference, naming the executor,
its host and both images. The seeds' team lost a cluster to mixed native libraries (`UnsatisfiedLinkError:
libtensorflow_jni.so` on hosts with another glibc); this is the check that would have told them at start.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from tfscore.runtime.doctor.facts import compare, executor_mismatch, facts, manifest_path, recorded_and_drift
from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.session import is_local_master


def executor_check_wanted(master: str, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return not is_local_master(master) or env.get("TFSCORE_CHECK_EXECUTORS") == "1"


def driver_manifest(path: str | Path | None = None) -> dict[str, Any]:
    """The driver's manifest: its image's (after checking this process still matches it), else the live facts."""
    p = Path(path) if path else manifest_path()
    live = facts()
    if not p.exists():
        return live
    recorded, drift = recorded_and_drift(p, live)
    if drift:
        raise TfscoreError(drift)
    return recorded


@lru_cache(maxsize=1)
def worker_manifest() -> tuple[dict[str, Any], str | None]:
    """(this worker's image manifest, how the live environment drifted from it or None); live facts without an image."""
    p = manifest_path()
    live = facts()
    return (live, None) if not p.exists() else recorded_and_drift(p, live)


def _report(_partition, prepare: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
    """Runs in an executor's Python worker: who am I, and what do I run; then `prepare` (the caller's warm-up of this
    worker, which Spark reuses for the job's tasks), whose failure is left to those tasks to report."""
    manifest, drift = worker_manifest()
    if prepare is not None and drift is None:
        try:
            prepare()
        except Exception:  # noqa: BLE001 - the job's own tasks fail on it with their sentence
            pass
    from tfscore.runtime import prewarm

    return [{"executor": os.environ.get("SPARK_EXECUTOR_ID", "driver"),
             "host": os.environ.get("SPARK_EXECUTOR_POD_NAME") or socket.gethostname(),
             "manifest": manifest, "drift": drift, "worker": os.getpid(), "warm": prewarm.SERVED}]


def registered_executors(sc, live_only: bool) -> list[Any]:
    """The executors Spark's status store knows (its ExecutorSummary objects, through py4j), the driver's entry
    excluded; live ones only, or every one that ever registered. Raises when the store cannot be read."""
    summaries = sc._jsc.sc().statusStore().executorList(live_only)
    return [e for e in (summaries.apply(i) for i in range(summaries.size())) if e.id() != "driver"]


def _task_slots(sc) -> int:
    """The registered executors' cores: one check task each, not the 2 of Spark's default parallelism (at least 2)
    on a 1-core executor, each ~0.3 s more on the way to scoring. Spark's default parallelism when unknown (a local
    master, whose only executor is the driver)."""
    try:
        cores = sum(e.totalCores() for e in registered_executors(sc, live_only=True))
    except Exception:  # noqa: BLE001 - no status store to read: the default
        cores = 0
    return cores or sc.defaultParallelism


def _arrow_reports(batches, prepare: Callable[[], Any] | None = None):
    """_report as a mapInArrow function: one JSON row per partition."""
    import pyarrow as pa

    for _ in batches:
        pass
    yield pa.RecordBatch.from_pylist([{"report": json.dumps(r)} for r in _report(None, prepare)])


def spark_failure(text: str) -> str:
    """The cause in a failed Spark job's text: the Python worker's exception, a program that would not start, else the
    first line."""
    python = [m.group(0) for m in re.finditer(r"^\w+(Error|Exception): .*$", text, re.M)]
    if python:
        return python[-1].strip()[:300]
    program = re.search(r"Cannot run program [^\n]*", text)
    if program:
        return program.group(0).strip()[:300]
    return (text.strip().splitlines() or ["unknown error"])[0][:300]


def check_executors(spark, expected: Mapping[str, Any], prepare: Callable[[], Any] | None = None) -> dict[str, int]:
    """Every executor's manifest must equal the driver's; raises TfscoreError naming the first executor that differs.
    Returns how many executors answered and how many of their Python workers came warm from the executor's pool
    (tfscore.runtime.prewarm), TensorFlow already imported.

    One tiny job with one task per task slot: all slots are free when it starts, and Spark offers every free slot a
    task in the same round (the tasks prefer no host), so every registered executor takes as many as it has slots
    (executors that register later are not seen). Each task then runs `prepare` in its Python worker, which the
    scoring task of that slot reuses.

    A DataFrame's mapInArrow, not an RDD's mapPartitions: the scoring tasks run as mapInArrow too, and only a worker of
    the same kind is reused for them (Spark keys its Python daemons by the workers' environment, which differs between
    the RDD and the SQL runners), so only then do they find what `prepare` did."""
    n = max(1, _task_slots(spark.sparkContext))
    try:
        rows = spark.range(n, numPartitions=n).mapInArrow(functools.partial(_arrow_reports, prepare=prepare),
                                                          "report string").collect()
        reports = [json.loads(row.report) for row in rows]
    except Exception as exc:  # noqa: BLE001 - Spark's wrapper around the executor's own failure
        raise TfscoreError(f"the executors could not report their image manifest ({spark_failure(str(exc))}): run "
                           "them from the driver's tfscore runtime image (spark.kubernetes.container.image) with "
                           "PYSPARK_PYTHON=/opt/tfscore/venv/bin/python") from None
    seen: dict[str, dict[str, Any]] = {}
    for r in reports:
        seen.setdefault(r["executor"], r)
    for executor in sorted(seen, key=lambda e: (len(e), e)):
        r = seen[executor]
        if r.get("drift"):
            raise TfscoreError(f"executor {executor} on {r['host']}: {r['drift']}")
        diffs = compare(expected, r["manifest"])
        if diffs:
            raise TfscoreError(executor_mismatch(executor, r["host"], expected, r["manifest"], diffs))
    workers = {(r["executor"], r.get("worker")): bool(r.get("warm")) for r in reports}
    return {"executors": len(seen), "pythonWorkers": len(workers), "warmPythonWorkers": sum(workers.values())}
