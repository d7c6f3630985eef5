"""Chart tier fixtures: helm, the real API server (the operator tier's control plane in this tier's own state dir and
ports, or $KUBECONFIG), kubectl, the CRDs and Pod-Security-"restricted" namespaces. Helpers live in chart_helpers.py."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chart_helpers import HERE

from harness.common import CI, ROOT, cluster_env, skip_or_fail
from harness.controlplane import kubeconfig_fixture
from harness.kube import CHART, RESTRICTED, Helm, Kubectl


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chart/" in str(item.fspath):
            item.add_marker(pytest.mark.chart)


@pytest.fixture(scope="session")
def helm() -> Helm:
    path = Path(cluster_env()["HELM"])
    if not path.exists():
        if not CI:
            pytest.skip(f"helm not built: {path} is missing (run `make cluster-build`)")
        subprocess.run(["bash", str(ROOT / "hack" / "cluster" / "build.sh"), "all"], check=True)
    return Helm(str(path))


# ---------------------------------------------------------------- the real API server


kubeconfig = kubeconfig_fixture("chart", port_offset=100)  # own state dir and ports: operator tier + 100


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Kubectl:
    path = cluster_env()["KUBECTL"]
    if not Path(path).exists():
        skip_or_fail("chart", f"kubectl not built: {path} is missing (run `make cluster-build-control-plane`)")
    return Kubectl(path, kubeconfig)


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> None:
    """The chart's crds/ applied the way its README tells users to upgrade them (server-side apply)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    kubectl.wait_established("scoringjobs.tfscore.io", "scoringschedules.tfscore.io", "kopfpeerings.kopf.dev",
                             "clusterkopfpeerings.kopf.dev")


@pytest.fixture(scope="session")
def servicemonitor_crd(kubectl: Kubectl) -> None:
    """prometheus-operator's ServiceMonitor CRD (generated from its Go types; see servicemonitor-crd.sh)."""
    gen = subprocess.run(["bash", str(HERE / "servicemonitor-crd.sh")], capture_output=True, text=True)
    if gen.returncode != 0:
        skip_or_fail("chart", f"cannot generate the ServiceMonitor CRD:\n{gen.stderr[-2000:]}")
    kubectl("apply", "--server-side", "-f", gen.stdout.strip())
    kubectl.wait_established("servicemonitors.monitoring.coreos.com")


@pytest.fixture(scope="session")
def namespaces(kubectl: Kubectl) -> Iterator[Any]:
    """make(name): a namespace that enforces Pod Security "restricted"; all deleted at the end of the session."""
    made: list[str] = []

    def make(name: str) -> str:
        if name not in made:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}}
            kubectl("apply", "-f", "-", input=json.dumps(body))
            made.append(name)
        return name

    yield make
    if made:
        kubectl("delete", "namespace", "--wait=false", "--ignore-not-found", *made, check=False)


