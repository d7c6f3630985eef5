"""Operator tier: the real operator (`tfscore operator`, a subprocess running kopf) against a real kube-apiserver + etcd
+ kube-controller-manager (garbage collector) from hack/cluster. There is no kubelet: tests play its part by writing pod
status through the API (pods/status), exactly as a kubelet would.

Cluster: $KUBECONFIG when set (any real cluster; nothing is started or stopped). Otherwise the tier starts its own
control plane from the cache with `hack/cluster/up.sh control-plane`, in its own state directory and on its own ports
(so it never touches a harness cluster someone else is using), and stops exactly the processes it started (by the pid
files up.sh wrote) at the end. Binaries missing: skip with the reason, except under CI=true, where the fixture builds
them (`hack/cluster/build.sh control-plane`) and fails loudly if that is impossible.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "hack" / "cluster"
CACHE = Path(os.environ.get("TFSCORE_CACHE", Path.home() / ".cache" / "tfscore"))
TIER_CACHE = CACHE / "operator-tier"
K8S_VERSION = "v1.33.13"  # hack/cluster/lib.sh pins it; read from there when possible
CP_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
# The tier's own ports (the harness defaults + 100) so a harness cluster on the same machine keeps running untouched.
PORTS = {"TFSCORE_ETCD_PORT": 36479, "TFSCORE_ETCD_PEER_PORT": 36480, "TFSCORE_APISERVER_PORT": 36543,
         "TFSCORE_KCM_PORT": 36357, "TFSCORE_SCHEDULER_PORT": 36359, "TFSCORE_KUBELET_PORT": 36350,
         "TFSCORE_KUBELET_HEALTHZ_PORT": 36348, "TFSCORE_PROXY_HEALTHZ_PORT": 36356, "TFSCORE_PROXY_METRICS_PORT": 36349}
CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/operator/" in str(item.fspath):
            item.add_marker(pytest.mark.operator)


def _k8s_version() -> str:
    lib = (CLUSTER / "lib.sh").read_text() if (CLUSTER / "lib.sh").exists() else ""
    for line in lib.splitlines():
        if line.startswith("K8S_VERSION="):
            return line.split(":-", 1)[1].split("}", 1)[0]
    return K8S_VERSION


def _unavailable(reason: str) -> None:
    if CI:
        pytest.fail(f"operator tier cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def _tier_env() -> dict[str, str]:
    """Environment for hack/cluster scripts: own state dir and ports; binaries shared with the harness cache."""
    TIER_CACHE.mkdir(parents=True, exist_ok=True)
    for shared in ("k8s", "go"):  # share the built binaries and Go caches, keep kubeconfig.path and state separate
        link = TIER_CACHE / shared
        if not link.exists() and not link.is_symlink():
            (CACHE / shared).mkdir(parents=True, exist_ok=True)
            link.symlink_to(CACHE / shared)
    return {**os.environ, "TFSCORE_CACHE": str(TIER_CACHE),
            "TFSCORE_CLUSTER_STATE": str(TIER_CACHE / "cluster" / "state"),
            **{k: str(v) for k, v in PORTS.items()}}


def _stop_own_processes(state: Path) -> None:
    """Stop what up.sh started for this tier, by pid file, newest first (never by name)."""
    pids = state / "pids"
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


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    if os.environ.get("KUBECONFIG"):
        yield os.environ["KUBECONFIG"]
        return
    if not (CLUSTER / "up.sh").exists():
        _unavailable("hack/cluster/up.sh is missing (cluster harness not present)")
    env = _tier_env()
    bin_dir = CACHE / "k8s" / _k8s_version() / "bin"
    missing = [b for b in CP_BINARIES if not (bin_dir / b).exists()]
    if missing:
        if not CI:
            _unavailable(f"control-plane binaries not built: {', '.join(missing)} missing in {bin_dir} "
                         "(run hack/cluster/build.sh control-plane)")
        if not shutil.which("go") and not Path("/usr/local/go/bin/go").exists():
            pytest.fail("CI=true but Go is missing: cannot build the control plane", pytrace=False)
        subprocess.run(["bash", str(CLUSTER / "build.sh"), "control-plane"], env=env, check=True)
    state = Path(env["TFSCORE_CLUSTER_STATE"])
    started = time.monotonic()
    up = subprocess.run(["bash", str(CLUSTER / "up.sh"), "control-plane"], env=env, capture_output=True, text=True)
    if up.returncode != 0:
        _stop_own_processes(state)
        pytest.fail(f"hack/cluster/up.sh control-plane failed:\n{up.stderr[-4000:]}", pytrace=False)
    print(f"\ncontrol plane up in {time.monotonic() - started:.1f}s ({state})", file=sys.stderr)
    try:
        yield str(state / "kubeconfig")
    finally:
        _stop_own_processes(state)


@pytest.fixture(scope="session")
def api(kubeconfig: str) -> Any:
    from kubernetes import client, config

    conf = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=conf)
    return client.ApiClient(conf)


@pytest.fixture(scope="session")
def core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def custom(api: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` (and the last value) on timeout."""
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
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="session")
def crd(api: Any, kubeconfig: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    ext = client.ApiextensionsV1Api(api)
    body = yaml.safe_load((ROOT / "crds" / "scoringjob.yaml").read_text())
    try:
        ext.create_custom_resource_definition(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = ext.read_custom_resource_definition(body["metadata"]["name"])
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        ext.replace_custom_resource_definition(body["metadata"]["name"], body)

    def established() -> bool:
        got = ext.read_custom_resource_definition(body["metadata"]["name"])
        return any(c.type == "Established" and c.status == "True" for c in got.status.conditions or [])

    wait_for("the ScoringJob CRD to be established", established)
    # The CRD's OpenAPI is served a little after Established; a create right away may skip defaulting.
    time.sleep(1.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Operator:
    """`tfscore operator` as a child process: start, kill -9 (crash), restart; its output goes to a log file."""

    def __init__(self, kubeconfig: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig, self.log_dir = kubeconfig, log_dir
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = self.health_port = 0
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.metrics_port, self.health_port = _free_port(), _free_port()
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "TFSCORE_BACKOFF_BASE_SECONDS": "0.5",
               "TFSCORE_BACKOFF_MAX_SECONDS": "2", "TFSCORE_RUNTIME_IMAGE": "localhost/tfscore/runtime@sha256:" +
               "0" * 64, "PYTHONUNBUFFERED": "1", **self.extra_env}
        self.log = self.log_dir / f"operator-{self.starts}.log"
        tfscore = Path(sys.executable).parent / "tfscore"
        self.proc = subprocess.Popen(
            [str(tfscore), "operator", "--standalone", "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
             "--metrics-port", str(self.metrics_port)],
            env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        wait_for("the operator's liveness endpoint", self.healthy, timeout=30)

    def healthy(self) -> bool:
        import urllib.request

        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"operator exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def metrics(self) -> str:
        import urllib.request

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


@pytest.fixture(scope="session")
def operator(kubeconfig: str, crd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(kubeconfig, tmp_path_factory.mktemp("operator"))
    op.start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def namespace(core: Any, operator: Operator) -> Iterator[str]:
    """A fresh namespace with the driver ServiceAccount (the chart creates it in real installs)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_service_account(name, {"metadata": {"name": "tfscore-driver"}})
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            core.delete_namespace(name)


# ---------------------------------------------------------------- helpers the tests share


def scoringjob(name: str, **spec: Any) -> dict[str, Any]:
    base = {"model": {"uri": "s3a://models/risk/"}, "input": {"uri": "s3a://in/"}, "output": {"uri": "s3a://out/"},
            "startupTimeoutSeconds": 600}
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


@pytest.fixture
def k8s(core: Any, custom: Any, namespace: str) -> Cluster:
    return Cluster(core, custom, namespace)
