"""Python workers that arrive with TensorFlow already imported, for Spark's executors on Kubernetes.

On the harness an executor pod's JVM registers ~8 s before its first task reaches Python, and that first task then pays
for the whole Python side at once: the daemon's start, the worker's imports (pyspark's worker, pyarrow, tfscore) and
`import tensorflow` — 8.4 s of a 1-core pod's time (Spark's own "boot 1749, init 1394, finish 5256" ms), all on the way
to the first scored batch. A warm worker does that work in the idle seconds instead:

- `serve` — the image's executor entrypoint starts one per executor core, beside the executor JVM and at a lower CPU
  priority. It binds a Unix socket in the pool directory (TFSCORE_PREWARM_DIR), imports what every scoring worker
  imports, reads the image facts the executors' check asks for, and then waits for one hand-off: a connection from
  Spark to serve as a Python worker, passed over the socket with the daemon's environment. It never forks after
  importing TensorFlow, which starts a thread on import (pyspark's daemon forks before importing anything, for the same
  reason).
- `claim` — called by tfscore.runtime.daemon (spark.python.daemon.module) for each new worker connection; it hands
  the connection to a warm process of the pool, or returns None and the daemon forks a fresh worker as pyspark's does.

A warm process takes a connection only when it would run the same code as a fresh worker: the same Python, the same
files for the packages it imported, and the same PYTHONHASHSEED (fixed at interpreter start). Otherwise it refuses, and
the daemon forks. Wire format (one stream on the pool socket): the daemon sends a 4-byte length with the connection and
its stdout/stderr as SCM_RIGHTS, then that many bytes of JSON (`_offer`); the warm process answers a 4-byte pid, or 0
for a refusal.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POOL_ENV = "TFSCORE_PREWARM_DIR"  # set by the entrypoint for the warm processes and (through the JVM) the daemon
IDLE_ENV = "TFSCORE_PREWARM_IDLE_SECONDS"
IDLE_SECONDS = 300.0  # a warm process nobody claimed (a job with fewer concurrent tasks than cores) frees its memory
HANDOFF_SECONDS = 90.0  # a warm process still importing is waited for: it is nearer ready than a fresh fork would be
# What a scoring worker imports before its first batch: the worker loop, the Arrow serializers of mapInArrow, the
# executors' check and the scorer (whose modules the tasks' pickled functions name), and pyarrow.
MODULES = ("pyspark.daemon", "pyspark.worker", "pyspark.sql.pandas.serializers", "pyarrow", "pyarrow.parquet",
           "tfscore.runtime.doctor.executors", "tfscore.runtime.scorer")
PACKAGES = ("pyspark", "py4j", "pyarrow", "numpy", "tensorflow", "tfscore")  # must come from the same files
_INT = struct.Struct("!i")
SERVED = False  # True in a warm process once it serves a worker connection (the executors' check reports it)


def pool() -> Path | None:
    where = os.environ.get(POOL_ENV)
    return Path(where) if where else None


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = conn.recv(n - got)
        if not chunk:
            raise ConnectionError("the peer closed the pool socket")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _package_files() -> dict[str, str | None]:
    """Where this interpreter finds each package of PACKAGES, without importing it."""
    import importlib.util

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__file__", None)
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        out[name] = spec.origin if spec is not None else None
    return out


def _offer() -> dict[str, Any]:
    """What the daemon tells a warm process: the environment, working directory, arguments and package files a fresh
    worker would have."""
    return {"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv, "path": sys.path,
            "executable": sys.executable, "packages": _package_files()}


def claim(conn: socket.socket, tried: set[str]) -> int | None:
    """Hand `conn` (a new worker connection from the JVM) to a warm process of the pool: its pid, or None when none
    takes it (no pool, all claimed or gone, or a refusal), and the caller forks. `tried` holds the sockets already
    used, each of which serves once."""
    where = pool()
    if where is None:
        return None
    try:
        candidates = sorted(p for p in where.glob("*.sock") if str(p) not in tried)
    except OSError:
        return None
    payload = json.dumps(_offer()).encode()
    for path in candidates:
        tried.add(str(path))
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as link:
                link.settimeout(HANDOFF_SECONDS)
                link.connect(str(path))
                socket.send_fds(link, [_INT.pack(len(payload))], [conn.fileno(), 1, 2])
                link.sendall(payload)
                pid = _INT.unpack(_recv_exact(link, _INT.size))[0]
        except OSError:  # gone, not listening any more, or timed out: the next one, else a fork
            continue
        if pid > 0:
            return pid
    return None


def _refusal(offer: dict[str, Any], hash_seed: str | None) -> str | None:
    """Why this warm process must not serve the offer (None when it may): it would run other code than a fresh
    worker forked by the daemon would."""
    if offer.get("executable") != sys.executable:
        return f"another Python ({offer.get('executable')})"
    if offer.get("env", {}).get("PYTHONHASHSEED") != hash_seed:  # fixed at interpreter start; partitioning hashes by it
        return "another PYTHONHASHSEED"
    mine = _package_files()
    for name, where in (offer.get("packages") or {}).items():
        if where != mine.get(name):
            return f"{name} from {where}, not {mine.get(name)}"
    return None


def warm_up() -> None:
    """Import what a scoring worker imports (MODULES), TensorFlow as the workers import it, and the image facts the
    check reads."""
    import importlib

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in MODULES:
        importlib.import_module(name)
    from tfscore.runtime import model
    from tfscore.runtime.doctor import executors

    model.import_tensorflow()
    executors.worker_manifest()  # its `java -version` and package metadata, cached for the check's task


def _at_lowest_priority(step: Callable[[], Any]) -> None:
    """`step` in a thread at nice 19. On Linux the nice value is a thread's own, so the executor JVM starting beside
    this process gets the pod's CPU first (its registration is on the way to the first task too), while this process
    later scores from its main thread at normal priority: an unprivileged process could never lower its nice value
    again. Threads `step` starts inherit its priority (pyarrow's jemalloc purger; none from TensorFlow)."""
    import threading

    failed: list[BaseException] = []

    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:  # no such control here: the same work at the normal priority
            pass
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failed.append(exc)

    worker = threading.Thread(target=run, name="tfscore-prewarm")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]


def _adopt(offer: dict[str, Any], fds: list[int]) -> socket.socket:
    """Become the worker the daemon would have forked: its stdout/stderr, environment, directory and arguments."""
    conn_fd, out_fd, err_fd = fds
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    os.close(out_fd)
    os.close(err_fd)
    os.environ.clear()
    os.environ.update(offer["env"])
    os.chdir(offer["cwd"])
    sys.argv[:] = offer["argv"]
    sys.path[:] = offer["path"]
    return socket.socket(fileno=conn_fd)


def run_worker(conn: socket.socket) -> int:
    """What pyspark's daemon does in the child it forks: acknowledge with the pid, then run (and, when Spark reuses
    workers, re-run) the worker loop on the connection until it ends."""
    from pyspark.daemon import worker
    from pyspark.serializers import write_int
    from pyspark.util import enable_faulthandler

    with enable_faulthandler():
        out = conn.makefile(mode="wb")
        write_int(os.getpid(), out)
        out.flush()
        out.close()
        authenticated = os.environ.get("PYTHON_UNIX_DOMAIN_ENABLED", "false").lower() == "true"
        reuse = os.environ.get("SPARK_REUSE_WORKER")
        while True:
            code = worker(conn, authenticated)
            if code == 0:
                authenticated = True
            if not reuse or code:
                try:
                    while conn.recv(1024):  # wait until Spark closes its end
                        pass
                except OSError:
                    pass
                return code
            import gc

            gc.collect()


def serve(where: Path, idle: float | None = None) -> int:
    """One warm process: bind a socket in the pool, warm up, serve one hand-off (or exit after `idle` seconds)."""
    hash_seed = os.environ.get("PYTHONHASHSEED")
    path = where / f"{os.getpid()}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # bound before the imports: a daemon that comes early waits for this process
    listener.listen(1)
    try:
        import numpy  # noqa: F401 - here, at normal priority: its BLAS threads start with it and are inherited

        began = time.monotonic()
        _at_lowest_priority(warm_up)
        print(f"tfscore prewarm: ready in {time.monotonic() - began:.1f} s (TensorFlow imported)", file=sys.stderr,
              flush=True)
        listener.settimeout(idle if idle is not None else float(os.environ.get(IDLE_ENV, IDLE_SECONDS)))
        try:
            link, _ = listener.accept()
        except TimeoutError:
            return 0
    finally:
        listener.close()
        path.unlink(missing_ok=True)
    with link:
        link.settimeout(HANDOFF_SECONDS)
        header, fds, _, _ = socket.recv_fds(link, _INT.size, 3)
        if len(fds) != 3 or len(header) != _INT.size:
            for fd in fds:
                os.close(fd)
            return 1
        offer = json.loads(_recv_exact(link, _INT.unpack(header)[0]))
        refusal = _refusal(offer, hash_seed)
        if refusal is not None:
            for fd in fds:
                os.close(fd)
            print(f"tfscore prewarm: not serving this worker: {refusal}", file=sys.stderr)
            link.sendall(_INT.pack(0))
            return 0
        conn = _adopt(offer, fds)
        link.sendall(_INT.pack(os.getpid()))
    global SERVED
    SERVED = True
    return run_worker(conn)


def spark_python_path() -> list[str]:
    """The entries Spark's JVM puts first on its Python workers' PYTHONPATH (PythonUtils.sparkPythonPath): pyspark and
    py4j from SPARK_HOME/python/lib, whose pyspark — not the venv's — a fresh worker then runs."""
    home = os.environ.get("SPARK_HOME")
    if not home:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
        home = os.path.dirname(spec.origin) if spec is not None and spec.origin else None
    lib = Path(home or "/nonexistent") / "python" / "lib"
    return [str(p) for p in [lib / "pyspark.zip", *sorted(lib.glob("py4j-*-src.zip"))] if p.is_file()]


def main(argv: list[str] | None = None) -> int:
    """`python -m tfscore.runtime.prewarm DIR`: one warm process for the pool DIR (the executor entrypoint's)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tfscore.runtime.prewarm POOL_DIR", file=sys.stderr)
        return 64
    sys.path[:0] = [p for p in spark_python_path() if p not in sys.path]  # import what a fresh worker would
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the daemon's shutdown ends a served worker, as it ends its children
    started = time.monotonic()
    try:
        return serve(Path(args[0]))
    except Exception as exc:  # noqa: BLE001 - a warm process that fails leaves the daemon to fork; one line says why
        print(f"tfscore prewarm: stopped after {time.monotonic() - started:.1f} s: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # run as `python -m`: serve from the importable module, whose SERVED a task reads
    from tfscore.runtime import prewarm as _module

    sys.exit(_module.main())
