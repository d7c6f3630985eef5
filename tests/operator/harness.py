"""A control plane and a running operator for the operator tier and bench/admission.py (no pytest in here).

Control plane: $KUBECONFIG when set (used as is). Otherwise `hack/cluster/up.sh control-plane` in this tier's own state
directory and on its own ports (the harness defaults + 100), so a harness cluster someone else runs on this machine is
never touched; `stop` ends exactly the processes up.sh recorded in that state directory's pid files (hack/cluster's
down.sh is not used: it also tears down the node-level network of the default harness, which may be in use).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "hack" / "cluster"
CACHE = Path(os.environ.get("TFSCORE_CACHE", Path.home() / ".cache" / "tfscore"))
TIER_CACHE = CACHE / "operator-tier"
CP_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
PORTS = {"TFSCORE_ETCD_PORT": 36479, "TFSCORE_ETCD_PEER_PORT": 36480, "TFSCORE_APISERVER_PORT": 36543,
         "TFSCORE_KCM_PORT": 36357, "TFSCORE_SCHEDULER_PORT": 36359, "TFSCORE_KUBELET_PORT": 36350,
         "TFSCORE_KUBELET_HEALTHZ_PORT": 36348, "TFSCORE_PROXY_HEALTHZ_PORT": 36356, "TFSCORE_PROXY_METRICS_PORT": 36349}
FAKE_IMAGE = "localhost/tfscore/runtime@sha256:" + "0" * 64


class Unavailable(Exception):
    """The control plane cannot be started here (the message says why)."""


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


def k8s_version() -> str:
    lib = CLUSTER / "lib.sh"
    for line in (lib.read_text() if lib.exists() else "").splitlines():
        if line.startswith("K8S_VERSION="):
            return line.split(":-", 1)[1].split("}", 1)[0]
    raise Unavailable("hack/cluster/lib.sh does not pin K8S_VERSION")


def tier_env() -> dict[str, str]:
    """Environment for hack/cluster scripts: own state and ports; binaries and Go caches shared with the harness."""
    TIER_CACHE.mkdir(parents=True, exist_ok=True)
    for shared in ("k8s", "go"):
        link = TIER_CACHE / shared
        if not link.exists() and not link.is_symlink():
            (CACHE / shared).mkdir(parents=True, exist_ok=True)
            link.symlink_to(CACHE / shared)
    return {**os.environ, "TFSCORE_CACHE": str(TIER_CACHE),
            "TFSCORE_CLUSTER_STATE": str(TIER_CACHE / "cluster" / "state"),
            **{k: str(v) for k, v in PORTS.items()}}


class ControlPlane:
    """Start (or reuse $KUBECONFIG) and stop the tier's control plane."""

    def __init__(self, build: bool = False) -> None:
        self.build = build
        self.state: Path | None = None
        self.kubeconfig = ""

    def start(self) -> str:
        if os.environ.get("KUBECONFIG"):
            self.kubeconfig = os.environ["KUBECONFIG"]
            return self.kubeconfig
        if not (CLUSTER / "up.sh").exists():
            raise Unavailable("hack/cluster/up.sh is missing (cluster harness not present)")
        env = tier_env()
        bin_dir = CACHE / "k8s" / k8s_version() / "bin"
        missing = [b for b in CP_BINARIES if not (bin_dir / b).exists()]
        if missing:
            if not self.build:
                raise Unavailable(f"control-plane binaries not built: {', '.join(missing)} missing in {bin_dir} "
                                  "(run hack/cluster/build.sh control-plane)")
            subprocess.run(["bash", str(CLUSTER / "build.sh"), "control-plane"], env=env, check=True)
        self.state = Path(env["TFSCORE_CLUSTER_STATE"])
        self.stop()  # a previous run killed before its teardown
        shutil.rmtree(self.state / "etcd", ignore_errors=True)  # every run starts from an empty cluster (certs kept)
        up = subprocess.run(["bash", str(CLUSTER / "up.sh"), "control-plane"], env=env, capture_output=True,
                            text=True)
        if up.returncode != 0:
            self.stop()
            raise RuntimeError(f"hack/cluster/up.sh control-plane failed:\n{up.stderr[-4000:]}")
        self.kubeconfig = str(self.state / "kubeconfig")
        return self.kubeconfig

    def pids(self) -> dict[str, int]:
        """The control-plane processes this object started (none when $KUBECONFIG was used)."""
        if self.state is None:
            return {}
        found = {}
        for name in CP_BINARIES:
            pid_file = self.state / "pids" / f"{name}.pid"
            if pid_file.exists():
                found[name] = int(pid_file.read_text().strip() or 0)
        return found

    def stop(self) -> None:
        """SIGTERM (then SIGKILL) exactly the processes up.sh recorded for this state dir, newest first."""
        if self.state is None:
            return
        pids = self.state / "pids"
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            pid_file, exe_file = pids / f"{name}.pid", pids / f"{name}.exe"
            if not pid_file.exists():
                continue
            pid = int(pid_file.read_text().strip() or 0)
            exe = exe_file.read_text().strip() if exe_file.exists() else ""
            with contextlib.suppress(OSError):
                if pid and (not exe or os.readlink(f"/proc/{pid}/exe") == exe):
                    os.kill(pid, signal.SIGTERM)
                    for _ in range(150):
                        if not Path(f"/proc/{pid}").exists():
                            break
                        time.sleep(0.1)
                    else:
                        os.kill(pid, signal.SIGKILL)
            pid_file.unlink(missing_ok=True)
            exe_file.unlink(missing_ok=True)


def api_client(kubeconfig: str, pool: int = 8) -> Any:
    from kubernetes import client, config

    conf = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=conf)
    conf.connection_pool_maxsize = pool
    return client.ApiClient(conf)


def apply_crd(api: Any) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    ext = client.ApiextensionsV1Api(api)
    body = yaml.safe_load((ROOT / "crds" / "scoringjob.yaml").read_text())
    name = body["metadata"]["name"]
    try:
        ext.create_custom_resource_definition(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        body["metadata"]["resourceVersion"] = ext.read_custom_resource_definition(name).metadata.resource_version
        ext.replace_custom_resource_definition(name, body)

    def established() -> bool:
        got = ext.read_custom_resource_definition(name)
        return any(c.type == "Established" and c.status == "True" for c in got.status.conditions or [])

    wait_for("the ScoringJob CRD to be established", established)
    time.sleep(1.0)  # its OpenAPI (defaulting, validation) is served a moment after Established


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Operator:
    """`tfscore operator` as a child process: start, kill -9 (a crash), restart; output in a log file."""

    def __init__(self, kubeconfig: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig, self.log_dir = kubeconfig, log_dir
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = self.health_port = 0
        self.starts = 0
        self.log = log_dir / "operator-0.log"

    def start(self) -> None:
        self.starts += 1
        self.metrics_port, self.health_port = free_port(), free_port()
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "TFSCORE_BACKOFF_BASE_SECONDS": "0.5",
               "TFSCORE_BACKOFF_MAX_SECONDS": "2", "TFSCORE_RUNTIME_IMAGE": FAKE_IMAGE, "PYTHONUNBUFFERED": "1",
               **self.extra_env}
        self.log = self.log_dir / f"operator-{self.starts}.log"
        tfscore = Path(sys.executable).parent / "tfscore"
        self.proc = subprocess.Popen(
            [str(tfscore), "operator", "--standalone", "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
             "--metrics-port", str(self.metrics_port)],
            env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        wait_for("the operator's liveness endpoint", self.healthy, timeout=30)

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


def scoringjob(name: str, **spec: Any) -> dict[str, Any]:
    base = {"model": {"uri": "s3a://models/risk/"}, "input": {"uri": "s3a://in/"}, "output": {"uri": "s3a://out/"}}
    return {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringJob", "metadata": {"name": name},
            "spec": {**base, **spec}}
