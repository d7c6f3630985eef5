"""What a local run prints: tfscore's own lines on the terminal; TensorFlow's, the JVM's and Spark's in a log file.

TensorFlow's C++ logging (oneDNN, absl, cpu_feature_guard), the JVM's launcher warnings, Spark's log4j lines and
everything Spark's Python workers print go to file descriptor 2, from this process and from the JVM and workers it
starts (they inherit it). `RunLog` points descriptor 2 at a log file for the whole run and keeps Python's `sys.stderr`
(tfscore's progress, warnings and messages) on the terminal, so a user sees tfscore's lines and nothing else; the file
holds the rest, and a failure's message can name it. `--verbose` leaves descriptor 2 alone.

Inside a driver pod nothing is redirected: the pod's log is where operators look (Spark's lines stay at WARN and above).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

KEEP = 20  # log files kept per directory (older ones are removed when a run starts)


def in_pod(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return bool(env.get("POD_NAME") and env.get("KUBERNETES_SERVICE_HOST"))


def _log_dir() -> Path | None:
    cache = os.environ.get("TFSCORE_CACHE") or str(Path.home() / ".cache" / "tfscore")
    for candidate in (Path(cache) / "logs", Path(tempfile.gettempdir()) / "tfscore-logs"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
        except OSError:
            continue
    return None


def _prune(directory: Path, keep: int = KEEP) -> None:
    logs = sorted(directory.glob("run-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[keep:]:
        try:
            old.unlink()
        except OSError:
            pass


class RunLog:
    """Context manager: descriptor 2 → a log file, `sys.stderr` → the terminal, for the duration of a run.

    `path` is the log file (None when nothing was redirected: --verbose, inside a pod, or no writable place)."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        self.path: Path | None = None
        self._saved_fd: int | None = None
        self._saved_stderr: IO[str] | None = None

    def __enter__(self) -> RunLog:
        if self.verbose or in_pod():
            return self
        directory = _log_dir()
        if directory is None:
            return self
        _prune(directory, KEEP - 1)
        self.path = directory / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        sys.stderr.flush()
        log_fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._saved_fd = os.dup(2)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        self._saved_stderr = sys.stderr
        sys.stderr = os.fdopen(os.dup(self._saved_fd), "w", buffering=1, encoding="utf-8", errors="replace")
        return self

    def write(self, text: str) -> None:
        """Append `text` to the log file (e.g. the traceback behind a failure's one-line message)."""
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")

    def __exit__(self, *exc: object) -> None:
        if self._saved_fd is None:
            return
        sys.stderr.flush()
        terminal, sys.stderr = sys.stderr, self._saved_stderr  # type: ignore[assignment]
        terminal.close()
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self._saved_fd = None
