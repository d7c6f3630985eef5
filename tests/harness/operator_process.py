"""`tfscore operator` as a child process: start, kill -9 (a crash), restart; output in a log file per start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from harness.common import free_port, wait_for

FAKE_IMAGE = "localhost/tfscore/runtime@sha256:" + "0" * 64


class Operator:
    def __init__(self, kubeconfig: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig, self.log_dir = kubeconfig, log_dir
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = self.health_port = 0
        self.starts = 0
        self.log = log_dir / "operator-0.log"

    name = "operator"

    def args(self) -> list[str]:
        """`tfscore` arguments (the listen ports are this start's own: several operators run side by side)."""
        return ["operator", "--standalone", "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
                "--metrics-port", str(self.metrics_port)]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": self.kubeconfig, "TFSCORE_BACKOFF_BASE_SECONDS": "0.5",
                "TFSCORE_BACKOFF_MAX_SECONDS": "2", "TFSCORE_RUNTIME_IMAGE": FAKE_IMAGE, "PYTHONUNBUFFERED": "1",
                **self.extra_env}

    def start(self) -> None:
        self.starts += 1
        self.metrics_port, self.health_port = free_port(), free_port()
        self.log = self.log_dir / f"{self.name}-{self.starts}.log"
        tfscore = Path(sys.executable).parent / "tfscore"
        self.proc = subprocess.Popen([str(tfscore), *self.args()], env=self.environment(),
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        wait_for(f"{self.name}'s liveness endpoint", self.healthy, timeout=30)

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
            return r.read().decode()

    def kill(self) -> None:
        """SIGKILL: a crash, no cleanup of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
