"""Operator tier: the real operator (`tfscore operator`, a subprocess running kopf) against a real kube-apiserver + etcd
+ kube-controller-manager (garbage collector) from hack/cluster. There is no kubelet: tests play its part by writing pod
status through the API (pods/status), exactly as a kubelet would.

Cluster: $TFSCORE_OPERATOR_KUBECONFIG when set (a disposable control plane without kubelets; nothing is started or
stopped; plain $KUBECONFIG is ignored so a shell pointing at a real cluster never gets test objects). Otherwise the tier
starts its own control plane from the cache with `hack/cluster/up.sh control-plane`, in its own state directory and on
its own ports (so it never touches a harness cluster someone else is using), from an empty etcd, and stops it with
`hack/cluster/down.sh` on that state directory at the end. Binaries missing: skip with the reason, except under CI=true,
where the fixture builds them (`hack/cluster/build.sh control-plane`) and fails loudly if that is impossible.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from harness.controlplane import api_client, apply_crds, kubeconfig_fixture
from harness.operator_process import Operator
from harness.scoringjobs import Cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/operator/" in str(item.fspath):
            item.add_marker(pytest.mark.operator)


kubeconfig = kubeconfig_fixture("operator", port_offset=0)  # own state dir and ports: the harness defaults


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
    apply_crds(api)


@pytest.fixture(scope="session")
def operator(kubeconfig: str, crd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    # TFSCORE_POLICY: the operator reads a namespace's ScoringPolicy "tfscore" (the defaults where there is none).
    op = Operator(kubeconfig, tmp_path_factory.mktemp("operator"), env={"TFSCORE_POLICY": "tfscore"})
    op.start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def namespace(core: Any, operator: Operator) -> Iterator[str]:
    """A fresh namespace with the driver ServiceAccount (the chart creates it in real installs), enforcing Pod Security
    "restricted": the API server's own PodSecurity admission refuses any driver pod that does not meet it."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}})
    core.create_namespaced_service_account(name, {"metadata": {"name": "tfscore-driver"}})
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except Exception:  # noqa: BLE001 - best effort; the control plane is disposable
            pass


@pytest.fixture
def k8s(core: Any, custom: Any, namespace: str) -> Cluster:
    return Cluster(core, custom, namespace)
