"""Operator tier: the real operator (`tfscore operator`, a subprocess running kopf) against a real kube-apiserver + etcd
+ kube-controller-manager (garbage collector) from hack/cluster. There is no kubelet: tests play its part by writing pod
status through the API (pods/status), exactly as a kubelet would.

Cluster: $TFSCORE_OPERATOR_KUBECONFIG when set (a disposable control plane without kubelets; nothing is started or
stopped; plain $KUBECONFIG is ignored so a shell pointing at a real cluster never gets test objects). Otherwise the tier
starts its own control plane from the cache with `hack/cluster/up.sh control-plane`, in its own state directory and on
its own ports (so it never touches a harness cluster someone else is using), from an empty etcd, and stops it with
`hack/cluster/down.sh` on that state directory at the end. Binaries missing: skip with the reason, except under CI=true,
where the fixture builds them (`hack/cluster/build.sh control-plane`) and fails loudly if that is impossible.

Kueue (`kueue` fixture, only for the tests that use it: it adds seconds): the Kueue controller (harness.kueue, from
hack/cluster/kueue.sh) against this tier's control plane, on the tier's own ports, webhook certificate from the tier's
PKI; built from the Go module proxy when missing under CI=true. The operator runs with its Kueue integration on
(TFSCORE_KUEUE=true) for every test: a ScoringJob without the queue label must behave exactly as without it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.common import CACHE, CI, skip_or_fail
from harness.controlplane import api_client, apply_crds, kubeconfig_fixture
from harness.operator_process import Operator
from harness.schedules import OPERATOR_ENV, Schedules
from harness.scoringjobs import Cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/operator/" in str(item.fspath):
            item.add_marker(pytest.mark.operator)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from timelines import TIMELINES

    for test, steps in TIMELINES.items():
        terminalreporter.section(f"timeline: {test}")
        for what, seconds in steps:
            terminalreporter.write_line(f"{seconds:8.2f} s  {what}")


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
    # Schedules: scaled time (OPERATOR_ENV). TFSCORE_POLICY: the operator reads a namespace's ScoringPolicy "tfscore" (the
    # defaults where there is none).
    op = Operator(kubeconfig, tmp_path_factory.mktemp("operator"),
                  env={**OPERATOR_ENV, "TFSCORE_KUEUE": "true", "TFSCORE_POLICY": "tfscore"})
    op.start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture(scope="session")
def kueue(kubeconfig: str, crd: None, operator: Operator) -> Iterator[Any]:
    """The Kueue controller on this tier's control plane (stopped before the control plane is). The operator is
    restarted once it runs, as in an install where Kueue comes first: kopf resolves CRDs that appear later only if
    discovery already lists them at the CRD's last event, which loses the Workload watch now and then."""
    from harness.kueue import Kueue, Unavailable, tier_ports

    state = Path(kubeconfig).parent
    if not (state / "pki" / "ca.crt").exists():  # $TFSCORE_OPERATOR_KUBECONFIG: not a harness cluster of ours
        skip_or_fail("operator", f"Kueue needs a harness cluster's PKI to sign its webhook certificate: {state}/pki "
                     "is missing")
    controller = Kueue(kubeconfig, state, CACHE, build=CI, ports=tier_ports())
    started = time.monotonic()
    try:
        controller.start()
    except Unavailable as exc:
        skip_or_fail("operator", str(exc))
    print(f"\noperator tier: Kueue {controller.info['KUEUE_VERSION']} ready in {time.monotonic() - started:.1f}s")
    operator.stop()
    operator.start()
    try:
        yield controller
    finally:
        controller.stop()


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


@pytest.fixture
def schedules(core: Any, custom: Any, namespace: str) -> Schedules:
    return Schedules(core, custom, namespace)
