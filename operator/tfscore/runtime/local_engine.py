"""The local engine: a run on this machine from plain Parquet files to plain Parquet files, with no JVM at all.

A local Spark session costs about 12 s before its first task here, and its Python workers import TensorFlow only when
their first task arrives. For the Arrow reader and the Arrow writer Spark does nothing but schedule and count tasks, so a
local run of that shape (engine.choose) runs its tasks in a pool of Python worker processes instead. The workers start,
and import TensorFlow, while the driver resolves the models and plans the splits; each task runs the very function a
Spark task runs (scorer.map_splits → score_batches → PartWriter) and returns the same TaskReport, so the staged files,
the counts, the verification and the commit are the Spark path's (tests/runtime/test_parity.py holds both to identical
output). What Spark's local mode does, this does too: `local[N]` runs N tasks at once of spark.task.cpus threads each;
`local[N,F]` retries a failed task up to F attempts, each writing its own attempt-unique file; a data error in one task
stops the others.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import re
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pyarrow as pa

from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.report import TaskReport

_MASTER = re.compile(r"local(?:\[(?P<cores>\*|\d+)(?:,\s*(?P<failures>\d+))?\])?$")


def local_slots(master: str) -> tuple[int, int] | None:
    """(cores, attempts per task) of a Spark local master (`local`, `local[4]`, `local[*]`, `local[2,4]`); None for any
    other master."""
    m = _MASTER.match(master.strip())
    if not m:
        return None
    cores = m.group("cores")
    if cores is None:  # plain `local`: one core, as Spark's
        n = 1
    elif cores == "*":
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    else:
        n = int(cores)
    return max(1, n), max(1, int(m.group("failures") or 1))


class _Collector:
    """The Task's `counts` in a local worker: keeps the task's report for the worker to return."""

    report: TaskReport | None = None

    def add(self, value: dict[int, TaskReport]) -> None:
        self.report = next(iter(value.values()))


def _orphaned(parent: int) -> None:
    """A worker whose driver died (SIGKILL, OOM) exits: its queue never closes (every worker holds both ends), and an
    orphan would keep scoring, hold the driver's stdout open and pin its memory."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _warm(parent: int) -> None:
    """Each worker imports TensorFlow and the scoring code as soon as it starts, while the driver still plans."""
    threading.Thread(target=_orphaned, args=(parent,), name="tfscore-orphan-watch", daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the driver stops the workers
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tfscore.runtime import model, scorer  # noqa: F401

    model.import_tensorflow()


def _ready() -> float:
    """When this worker was ready: started, TensorFlow imported (the initializer ran before any call)."""
    return time.time()


def _run_task(task, index: int, attempt: int, cores: int) -> TaskReport:
    """One task in a worker: split `index` read, scored and written by the Spark path's own mapInArrow function."""
    from tfscore.runtime import scorer

    scorer.LOCAL_TASK = (index, attempt, cores)
    collector = _Collector()
    ids = pa.record_batch([pa.array([index], pa.int64())], names=["id"])
    for _ in scorer.map_splits(dataclasses.replace(task, counts=collector))(iter([ids])):
        pass  # the Arrow writer writes the batches itself: nothing is yielded
    if collector.report is None:
        raise TfscoreError(f"task {index} ended without a report")
    return collector.report


class LocalEngine:
    """A pool of `cores // task_cpus` worker processes, started at once.

    Spawned, each a fresh interpreter importing TensorFlow itself, not forked from a process that imported it once (a
    forkserver preload, or PySpark's daemon importing it before its forks): `import tensorflow` imports pandas and
    pyarrow, which start native threads (jemalloc's background thread among them), and forking a process with threads
    is what PySpark's daemon.py warns against. The imports run in parallel, one per core, while the driver plans."""

    kind = "local"
    spark = None

    def __init__(self, master: str, conf: dict[str, str]):
        slots = local_slots(master)
        if slots is None:
            raise TfscoreError(f"the local engine runs only on a local master, not {master}")
        cores, self.attempts = slots
        self.conf_values = conf
        self.task_cpus = max(1, int(conf.get("spark.task.cpus", "1")))
        self.workers = max(1, cores // self.task_cpus)
        self.parallelism = cores
        self._reports: dict[int, TaskReport] = {}
        self._done = 0
        self._total = 0
        self._cancelled = False
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_warm, initargs=(os.getpid(),))
        # ProcessPoolExecutor spawns a worker per submitted call: one call each starts them all now.
        self._started = [self.pool.submit(_ready) for _ in range(self.workers)]

    def conf(self, key: str) -> str | None:
        return self.conf_values.get(key)

    def check(self, job) -> None:
        """Nothing to check: the workers run in this machine's own environment."""

    def describe(self) -> dict[str, Any]:
        return {}

    def new_counts(self) -> None:
        return None  # each worker's task gets its own collector (_run_task)

    def reports(self, counts=None) -> dict[int, TaskReport]:
        return dict(self._reports)

    def marks(self) -> dict[str, float]:
        """The timeline's executorsRegistered: the last worker ready, when every one was."""
        if not all(f.done() and not f.cancelled() and f.exception() is None for f in self._started):
            return {}
        return {"executorsRegistered": max(f.result() for f in self._started)}

    # ---- the tracker the progress monitor polls
    def tasks(self) -> tuple[int, int]:
        return self._done, self._total

    def cancel(self) -> None:
        self._cancelled = True

    def score(self, src, sink, task, output_struct, job, monitor) -> dict[int, TaskReport]:
        """Every split, in split order, on the workers; a failed attempt is retried up to `attempts`; a data error
        (a report with an error) cancels the tasks not yet started and ends the run with the reports so far."""
        self._total = len(src.plan.splits)
        with monitor(self):
            running: dict[Future, tuple[int, int]] = {}
            pending = list(range(self._total))
            pending.reverse()
            while pending or running:
                while pending and len(running) < self.workers and not self._cancelled:
                    index = pending.pop()
                    running[self._submit(task, index, 0)] = (index, 0)
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    index, attempt = running.pop(fut)
                    try:
                        report = fut.result()
                    except BrokenProcessPool:
                        raise TfscoreError("a local scoring worker died (killed, or out of memory) while scoring; "
                                           "nothing was committed") from None
                    except Exception:
                        if attempt + 1 >= self.attempts or self._cancelled:
                            raise  # the job fails; the caller stops the attempts still running (stop)
                        running[self._submit(task, index, attempt + 1)] = (index, attempt + 1)
                        continue
                    self._reports[index] = report
                    self._done += 1
                    if report.error:
                        self._cancelled = True  # bad data fails every attempt alike: start nothing more
                if self._cancelled:
                    break  # the caller reports the error and stops the attempts still running (stop)
        if not self._cancelled:
            # Every task's files are closed and its report is here: the workers are ended now, so their memory is free
            # before the commit and none outlives a driver killed in it. Terminated, not shut down: a worker exiting
            # normally tears TensorFlow down, ~1 s per run here (lastBatch → scored in the timeline).
            self.stop()
        return dict(self._reports)

    def _submit(self, task, index: int, attempt: int) -> Future:
        try:
            return self.pool.submit(_run_task, task, index, attempt, self.task_cpus)
        except BrokenProcessPool:
            raise TfscoreError("a local scoring worker died (killed, or out of memory) before scoring; nothing was "
                               "committed") from None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every worker now (at the end of the tasks, or at the run's SIGTERM): no task writes into the staging once
        this returns."""
        processes = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            p.terminate()
        deadline = time.monotonic() + timeout
        for p in processes:
            p.join(max(0.0, deadline - time.monotonic()))
        # The pool's manager thread notices the ended workers and closes its wake-up pipe; until it has, the
        # interpreter's exit hook could write into that pipe as it closes, and print "Exception ignored … Bad file
        # descriptor" with a traceback after the run's own last line.
        manager = getattr(self.pool, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
