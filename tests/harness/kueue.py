"""Kueue for test tiers: the Kueue manager beside a running harness API server (no pytest in here).

Every step is hack/cluster/kueue.sh (the one source of truth for versions, paths, ports and the configuration); this
class only chooses the environment it runs in and turns its failures into exceptions:

    kueue = Kueue(kubeconfig, state_dir, cache_dir)   # state_dir: the cluster's TFSCORE_CLUSTER_STATE (its pki/ signs
    kueue.start()                                      # the webhook certificate); cache_dir: the TFSCORE_CACHE holding
    ...                                                # kueue/<version>/bin and k8s/<version>/bin
    kueue.stop()

`start()` raises `Unavailable` (with the reason) when the Kueue binary or kubectl is not built and `build=False`;
with `build=True` the script builds what is missing (a cold Kueue build takes minutes). A cluster other than the
harness default passes its own ports (`ports={"TFSCORE_KUEUE_WEBHOOK_PORT": ..., ...}`) so two Kueues never clash.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from harness.common import CLUSTER, Unavailable, env_port_offset

SCRIPT = CLUSTER / "kueue.sh"
PORT_VARS = ("TFSCORE_KUEUE_WEBHOOK_PORT", "TFSCORE_KUEUE_HEALTH_PORT", "TFSCORE_KUEUE_METRICS_PORT")
# A test tier's own Kueue: 16743/16781/16744 (+ the tier's port offset, + TFSCORE_TEST_PORT_OFFSET) sit above every
# control plane's ports (controlplane.BASE_PORTS 16348-16543, + 100 for the chart tier) and below the next checkout's
# (+ 1000 each), so side-by-side tiers and checkouts never share one. The harness cluster's own Kueue keeps lib.sh's.
TIER_PORTS = {"TFSCORE_KUEUE_WEBHOOK_PORT": 16743, "TFSCORE_KUEUE_HEALTH_PORT": 16781,
              "TFSCORE_KUEUE_METRICS_PORT": 16744}


def tier_ports(port_offset: int = 0) -> dict[str, int]:
    extra = env_port_offset()
    return {k: v + port_offset + extra for k, v in TIER_PORTS.items()}


class Kueue:
    """Start and stop the Kueue manager of one harness cluster through hack/cluster/kueue.sh."""

    def __init__(self, kubeconfig: str | os.PathLike[str], state_dir: str | os.PathLike[str],
                 cache_dir: str | os.PathLike[str], *, build: bool = False, ports: Mapping[str, int] | None = None,
                 timeout: float = 900.0) -> None:
        unknown = set(ports or {}) - set(PORT_VARS)
        if unknown:
            raise ValueError(f"unknown Kueue port variable(s) {sorted(unknown)}; expected some of {PORT_VARS}")
        self.kubeconfig, self.state_dir, self.cache_dir = Path(kubeconfig), Path(state_dir), Path(cache_dir)
        self.build, self.timeout = build, timeout
        self.ports = {k: str(v) for k, v in (ports or {}).items()}
        self._info: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        """The environment kueue.sh runs in: this cluster's kubeconfig, state dir, cache and ports."""
        return {**os.environ, "TFSCORE_KUEUE_KUBECONFIG": str(self.kubeconfig),
                "TFSCORE_CLUSTER_STATE": str(self.state_dir), "TFSCORE_CACHE": str(self.cache_dir), **self.ports}

    @property
    def info(self) -> dict[str, str]:
        """`kueue.sh env`: KUEUE_BIN, KUEUE_VERSION, KUBECTL, KUEUE_CONFIG, KUEUE_LOG, KUEUE_PID_FILE, KUEUE_*_URL."""
        if self._info is None:
            out = self._run("env", timeout=60).stdout
            self._info = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return self._info

    @property
    def log(self) -> Path:
        return Path(self.info["KUEUE_LOG"])

    def pid(self) -> int | None:
        """The manager's pid while kueue.sh reports it running, else None."""
        if self._run("status", check=False, timeout=60).returncode != 0:
            return None
        return int(Path(self.info["KUEUE_PID_FILE"]).read_text().strip())

    def start(self) -> None:
        if not SCRIPT.exists():
            raise Unavailable(f"{SCRIPT} is missing (cluster harness not present)")
        if not self.kubeconfig.exists():
            raise Unavailable(f"no kubeconfig at {self.kubeconfig} (start the cluster first)")
        kueue_bin, kubectl = Path(self.info["KUEUE_BIN"]), Path(self.info["KUBECTL"])
        if not os.access(kubectl, os.X_OK):
            raise Unavailable(f"kubectl not built: {kubectl} missing (run hack/cluster/build.sh control-plane)")
        if not self.build and not os.access(kueue_bin, os.X_OK):
            raise Unavailable(f"Kueue {self.info['KUEUE_VERSION']} not built: {kueue_bin} missing "
                              "(run hack/cluster/kueue.sh build)")
        offset = self.log.stat().st_size if self.log.exists() else 0
        up = self._run("up", check=False)
        if up.returncode != 0:
            log_tail = self._tail(self.log, offset)
            try:
                self.stop()
            except RuntimeError:
                pass  # the start failure is the error to report
            raise RuntimeError(f"hack/cluster/kueue.sh up failed:\n{up.stderr[-4000:]}{log_tail}")

    def stop(self) -> None:
        """kueue.sh down: webhook configurations deleted, the manager stopped by its pid file (safe to call twice)."""
        down = self._run("down", check=False)
        if down.returncode != 0:
            raise RuntimeError(f"hack/cluster/kueue.sh down failed:\n{down.stderr[-3000:]}")

    def __enter__(self) -> Kueue:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self, command: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(["bash", str(SCRIPT), command], env=self.env(), capture_output=True, text=True,
                                  timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"hack/cluster/kueue.sh {command} timed out after {exc.timeout:.0f}s") from None
        if check and done.returncode != 0:
            raise RuntimeError(f"hack/cluster/kueue.sh {command} failed:\n{done.stderr[-3000:]}")
        return done

    @staticmethod
    def _tail(path: Path, offset: int, lines: int = 30) -> str:
        """The last lines the manager logged since `offset` (nothing when this start never ran it)."""
        if not path.exists() or path.stat().st_size <= offset:
            return ""
        with path.open("rb") as f:
            f.seek(offset)
            new = f.read().decode(errors="replace").splitlines()[-lines:]
        return f"\n--- {path} (this start, last {len(new)} lines) ---\n" + "\n".join(new)
