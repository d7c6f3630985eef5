"""What every tier needs: repository paths, the cache, CI mode, the Unavailable exception, waits, ports, commands."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "hack" / "cluster"
CACHE = Path(os.environ.get("TFSCORE_CACHE", Path.home() / ".cache" / "tfscore"))
CI = os.environ.get("CI", "").lower() == "true"


class Unavailable(Exception):
    """This tier (or a component it needs) cannot run here; the message says why."""


def skip_or_fail(tier: str, reason: str) -> None:
    """Skip with the reason; under CI=true every tier this machine supports must run, so fail instead."""
    import pytest

    if CI:
        pytest.fail(f"{tier} tier cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def env_port_offset() -> int:
    """$TFSCORE_TEST_PORT_OFFSET: moves every tier's ports and state dirs, so two checkouts can run tiers side by side."""
    return int(os.environ.get("TFSCORE_TEST_PORT_OFFSET", "0") or 0)


def tier_dir(tier: str, cache: Path | None = None) -> Path:
    """A tier's state under the cache: <tier>, or <tier>-<offset> with a port offset."""
    extra = env_port_offset()
    return (cache or CACHE) / (tier if not extra else f"{tier}-{extra}")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; TimeoutError naming `what` (and the last value) otherwise."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # noqa: BLE001 - report the last error if it never converges
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], what: str, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    """Run a command; its stdout, or RuntimeError with the tail of its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-4000:]}{proc.stdout[-2000:]}")
    return proc.stdout


def cluster_env() -> dict[str, str]:
    """hack/cluster/env.sh as a dict (KUBECONFIG, KUBECTL, HELM, K8S_BIN, K8S_VERSION, ...)."""
    out = subprocess.run(["bash", str(CLUSTER / "env.sh")], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
