"""Spark's Python daemon for tfscore's executors (spark.python.daemon.module on a cluster master: session.py).

The protocol is pyspark's (pyspark/daemon.py, which the executor JVM's PythonWorkerFactory starts as
`python -m <module> <worker module>`): write the listening port to stdout; for each connection the JVM opens, start a
Python worker on it that first writes its pid back; on a pid read from stdin, SIGKILL that worker; when stdin closes or
on SIGTERM, SIGHUP every worker and exit. One difference: a new connection goes first to a warm process of the
executor's pool (tfscore.runtime.prewarm: TensorFlow and the worker's modules already imported), and only when none
takes it is a fresh worker forked, exactly as pyspark's daemon forks one.

This module imports nothing but the standard library and tfscore.runtime.prewarm (itself standard library at import):
it is on the way to every executor's first task, where pyspark's own daemon first imports all of pyspark.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import sys
import traceback
import uuid

from tfscore.runtime import prewarm

_INT = struct.Struct("!i")


def _listen() -> tuple[socket.socket, bytes, str | None]:
    """The listening socket where pyspark's daemon would open it, and what to write to stdout for it."""
    if os.environ.get("PYTHON_UNIX_DOMAIN_ENABLED", "false").lower() == "true":  # spark.python.unix.domain.socket.enabled
        path = os.path.join(os.environ["PYTHON_WORKER_FACTORY_SOCK_DIR"], f".{uuid.uuid4()}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(max(1024, socket.SOMAXCONN))
        encoded = path.encode()
        return listener, _INT.pack(len(encoded)) + encoded, path
    if os.environ.get("SPARK_PREFER_IPV6", "false").lower() == "true":
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.bind(("::1", 0, 0, 0))
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
    listener.listen(max(1024, socket.SOMAXCONN))
    return listener, _INT.pack(listener.getsockname()[1]), None


def _fork_worker(conn: socket.socket, listener: socket.socket) -> None:
    """pyspark's child: stdin on /dev/null (SPARK-26175), then the worker loop; never returns in the child."""
    pid = os.fork()
    if pid:
        return
    try:
        listener.close()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        code = prewarm.run_worker(conn)
    except BaseException:  # noqa: BLE001 - the executor's log gets it (the daemon's stderr), as from pyspark's child
        traceback.print_exc()
        os._exit(1)
    os._exit(code)


def manager() -> None:
    os.setpgid(0, 0)  # a process group of our own: the forked workers, all ended by one SIGHUP at shutdown
    listener, address, path = _listen()
    stdin = os.fdopen(sys.stdin.fileno(), "rb", 4)
    stdout = os.fdopen(sys.stdout.fileno(), "wb", 4)
    stdout.write(address)
    stdout.flush()
    served: set[int] = set()  # warm processes serving as workers: not in our process group
    tried: set[str] = set()  # pool sockets already offered a connection (each serves once)

    def shutdown(code: int) -> None:
        if path is not None and os.path.exists(path):
            os.remove(path)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for pid in served:
            try:
                os.kill(pid, signal.SIGHUP)
            except OSError:
                pass
        os.kill(0, signal.SIGHUP)
        sys.exit(code)

    signal.signal(signal.SIGTERM, lambda *_: shutdown(1))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked workers are reaped by the kernel
    poller = select.poll()
    poller.register(0, select.POLLIN)
    poller.register(listener, select.POLLIN)
    try:
        while True:
            ready = set()
            for fd, event in poller.poll(1000):
                if not event & (select.POLLIN | select.POLLHUP):
                    raise OSError(f"polling error: event {event} on fd {fd}")
                ready.add(fd)
            if 0 in ready:
                raw = stdin.read(_INT.size)
                if len(raw) < _INT.size:  # Spark closed stdin: exit
                    shutdown(0)
                pid = _INT.unpack(raw)[0]
                served.discard(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass  # already gone
            if listener.fileno() in ready:
                conn, _ = listener.accept()
                pid = prewarm.claim(conn, tried)
                if pid is not None:
                    served.add(pid)
                else:
                    _fork_worker(conn, listener)
                conn.close()
    finally:
        shutdown(1)


if __name__ == "__main__":
    manager()
