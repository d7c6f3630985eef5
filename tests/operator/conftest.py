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

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from harness import ControlPlane, Operator, Unavailable, api_client, apply_crd, scoringjob  # noqa: F401
from harness import wait_for as _wait_for

CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/operator/" in str(item.fspath):
            item.add_marker(pytest.mark.operator)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    try:
        return _wait_for(what, check, timeout, interval)
    except TimeoutError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    plane = ControlPlane(build=CI)  # under CI=true a missing control plane is built, never skipped
    started = time.monotonic()
    try:
        path = plane.start()
    except Unavailable as exc:
        if CI:
            pytest.fail(f"operator tier cannot run under CI=true: {exc}", pytrace=False)
        pytest.skip(str(exc))
    print(f"\ncontrol plane ready in {time.monotonic() - started:.1f}s ({path})")
    try:
        yield path
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def api(kubeconfig: str) -> Any:
    return api_client(kubeconfig)


@pytest.fixture(scope="session")
def core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def custom(api: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api)


@pytest.fixture(scope="session")
def crd(api: Any) -> None:
    apply_crd(api)


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
        try:
            core.delete_namespace(name)
        except Exception:  # noqa: BLE001 - best effort; the control plane is disposable
            pass


# ---------------------------------------------------------------- helpers the tests share


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
