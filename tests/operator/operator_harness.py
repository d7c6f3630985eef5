"""A control plane and a running operator for the operator tier and bench/admission.py (no pytest in here).

Control plane: $TFSCORE_OPERATOR_KUBECONFIG when set (used as is; it must be a cluster without kubelets, since the tests
play the kubelet, and a disposable one). Plain $KUBECONFIG is deliberately ignored: a developer's shell pointing at a
real cluster must not get test namespaces. Otherwise `hack/cluster/up.sh control-plane` in this tier's own state
directory and on its own ports (the harness defaults + 100), so a harness cluster someone else runs on this machine is
never touched (hack/cluster/README.md: any number of control-plane-only clusters may run beside the node-level one);
`stop` is hack/cluster/down.sh on that same state directory. Each start wipes this tier's etcd data (certs are kept),
so every run begins with an empty cluster.
"""

from __future__ import annotations

import json
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
KUBECONFIG_VAR = "TFSCORE_OPERATOR_KUBECONFIG"
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
    """Start (or reuse $TFSCORE_OPERATOR_KUBECONFIG) and stop the tier's control plane."""

    def __init__(self, build: bool = False) -> None:
        self.build = build
        self.state: Path | None = None
        self.kubeconfig = ""

    def start(self) -> str:
        if os.environ.get(KUBECONFIG_VAR):
            self.kubeconfig = os.environ[KUBECONFIG_VAR]
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
        """The control-plane processes this object started (none when $TFSCORE_OPERATOR_KUBECONFIG was used)."""
        if self.state is None:
            return {}
        found = {}
        for name in CP_BINARIES:
            pid_file = self.state / "pids" / f"{name}.pid"
            if pid_file.exists():
                found[name] = int(pid_file.read_text().strip() or 0)
        return found

    def stop(self) -> None:
        """hack/cluster/down.sh on this tier's own state dir: stops exactly what up.sh started there, by pid file,
        and fails if anything is left running or listening on this tier's ports (it never touches another cluster)."""
        if self.state is None or not (self.state / "pids").exists():
            return
        down = subprocess.run(["bash", str(CLUSTER / "down.sh")], env=tier_env(), capture_output=True, text=True)
        if down.returncode != 0:
            raise RuntimeError(f"hack/cluster/down.sh failed:\n{down.stderr[-3000:]}")


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


class Cluster:
    """Thin test-side view: create/read ScoringJobs, list children, and play the kubelet on driver pods."""

    def __init__(self, core: Any, custom: Any, namespace: str) -> None:
        self.core, self.custom, self.ns = core, custom, namespace

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringjobs", body)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringjobs", name)

    def patch(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringjobs", name,
                                                          {"spec": spec})

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringjobs", name)

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def wait_phase(self, name: str, phase: str, timeout: float = 20) -> dict[str, Any]:
        return wait_for(f"{name} phase {phase}",
                        lambda: (s := self.status(name)).get("phase") == phase and s, timeout=timeout)

    def driver_pods(self, name: str) -> list[Any]:
        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"tfscore.io/job={name},tfscore.io/role=driver")
        return sorted(pods.items, key=lambda p: p.metadata.name)

    def wait_pod(self, name: str, attempt: int = 1, timeout: float = 20) -> Any:
        pod_name = f"{name}-driver-{attempt}"
        return wait_for(f"driver pod {pod_name}",
                        lambda: next((p for p in self.driver_pods(name) if p.metadata.name == pod_name), None),
                        timeout=timeout)

    def events(self, name: str) -> list[Any]:
        evs = self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={name}")
        return sorted(evs.items, key=lambda e: (e.last_timestamp or e.event_time or 0, e.metadata.name))

    def wait_event(self, name: str, reason: str, timeout: float = 20) -> Any:
        return wait_for(f"event {reason} on {name}",
                        lambda: next((e for e in self.events(name) if e.reason == reason), None), timeout=timeout)

    # ---- the kubelet's part
    def _container_status(self, pod_name: str, state: dict[str, Any], ready: bool = False) -> dict[str, Any]:
        return {"name": "driver", "image": "localhost/tfscore/runtime", "imageID": "", "ready": ready,
                "restartCount": 0, "started": "running" in state, "state": state}

    def set_pod_status(self, pod_name: str, status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(pod_name, self.ns, {"status": status})

    def run_pod(self, pod_name: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.set_pod_status(pod_name, {
            "phase": "Running", "podIP": "10.244.0.10", "startTime": now,
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
            "containerStatuses": [self._container_status(pod_name, {"running": {"startedAt": now}}, ready=True)]})

    def finish_pod(self, pod_name: str, exit_code: int, message: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        state = {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                                "message": message, "startedAt": now, "finishedAt": now}}
        self.set_pod_status(pod_name, {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": [self._container_status(pod_name, state)]})

    def wait_pull_pod(self, pod_name: str, reason: str = "ImagePullBackOff") -> None:
        self.set_pod_status(pod_name, {
            "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [self._container_status(pod_name, {"waiting": {
                "reason": reason, "message": 'Back-off pulling image "localhost/tfscore/runtime"'}})]})

    def unschedulable_pod(self, pod_name: str) -> None:
        self.set_pod_status(pod_name, {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}]})

    def annotate_progress(self, pod_name: str, progress: dict[str, int]) -> None:
        self.core.patch_namespaced_pod(pod_name, self.ns, {"metadata": {"annotations": {
            "tfscore.io/progress": json.dumps(progress)}}})
