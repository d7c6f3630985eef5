"""End-to-end tier (issue 6): the chart installed with the locally built images on a real cluster, examples/e2e-job.yaml
scored by real driver and executor pods, and faults injected mid-run. Helpers and the target choice: e2e_harness.py.

Runs under CI=true or `make e2e` (TFSCORE_E2E=1); otherwise every test skips with the reason (it takes minutes and starts
a cluster). Under CI=true nothing may skip: a missing piece (podman, the harness) fails the tier.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_harness import (
    E2E_CACHE,
    JOBS_NS,
    KEEP,
    RELEASE,
    RELEASE_NS,
    TIMINGS,
    Image,
    Jobs,
    Target,
    build_image,
    clean_slate,
    data_dir,
    ensure_on_node,
    helm_values,
    local_run,
    make_data,
    read_scores,
    run,
    select_target,
    timed,
    volume_docs,
)

from harness.common import CACHE, CI, ROOT, Unavailable, cluster_env
from harness.kube import RESTRICTED, Helm, Kubectl

ENABLED = CI or os.environ.get("TFSCORE_E2E") == "1"
SKIP_REASON = ("e2e tier: a real cluster, the images and ~10 minutes; runs under CI=true or with `make e2e` "
               "(TFSCORE_E2E=1)")
SESSION_START = time.monotonic()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            if not ENABLED:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS:
        return
    TIMINGS["session"] = round(time.monotonic() - SESSION_START, 1)
    terminalreporter.section("e2e timings (seconds)")
    for step, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{step:<40}{seconds:>8.1f}")
    E2E_CACHE.mkdir(parents=True, exist_ok=True)
    (E2E_CACHE / "last-run.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")


def unavailable(reason: str) -> None:
    """Skip with the reason; under CI=true this tier must run, so fail instead."""
    if CI:
        pytest.fail(f"e2e tier cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def step(name: str) -> Iterator[None]:
    """A timed setup step: Unavailable skips (fails under CI=true), RuntimeError (a command that failed) fails."""
    with timed(name):
        try:
            yield
        except Unavailable as exc:
            unavailable(str(exc))
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    with step("cluster up"):
        chosen = select_target()
    print(f"\ne2e target: {chosen.describe()}")
    try:
        yield chosen
    finally:
        if chosen.teardown is not None and not KEEP:
            with timed("cluster down"):
                chosen.teardown()


def _tool(name: str) -> str:
    """The harness's pinned build (hack/cluster/env.sh), else one on PATH (a kind user's), else built (CI) or skip."""
    env = cluster_env()
    pinned = env[name.upper()]
    if Path(pinned).exists():
        return pinned
    if shutil.which(name):
        return shutil.which(name)
    if not CI:
        unavailable(f"{name} not built ({pinned} missing) and not on PATH: run `make cluster-build`")
    run(["bash", str(ROOT / "hack" / "cluster" / "build.sh"), "all"], "hack/cluster/build.sh all")
    return pinned


@pytest.fixture(scope="session")
def kubectl(target: Target) -> Kubectl:
    return Kubectl(_tool("kubectl"), target.kubeconfig)


@pytest.fixture(scope="session")
def helm(kubectl: Kubectl) -> Helm:
    return Helm(_tool("helm"))


@pytest.fixture(scope="session")
def images(target: Target, kubectl: Kubectl) -> dict[str, Image]:
    """The runtime and operator images built from this tree (images/build.sh) and put on the node."""
    if not (shutil.which("podman") or shutil.which("docker")) and not (
            os.environ.get("TFSCORE_E2E_RUNTIME_IMAGE") and os.environ.get("TFSCORE_E2E_OPERATOR_IMAGE")):
        unavailable("neither podman nor docker is installed (`make podman-setup`)")
    found: dict[str, Image] = {}
    for kind in ("runtime", "operator"):
        given = os.environ.get(f"TFSCORE_E2E_{kind.upper()}_IMAGE")
        if given:
            found[kind] = Image(given)
        else:
            with step(f"image build {kind}"):
                found[kind] = build_image(kind, target.engine)
        with step(f"image load {kind}"):
            built = found[kind].ref
            found[kind], loaded = ensure_on_node(target, kubectl, found[kind])
        print(f"{kind} image: {built} ({'loaded' if loaded else 'already on the node'}) as {found[kind].ref}")
    return found


@pytest.fixture(scope="session")
def volume() -> Path:
    """Model + input (made once, reused while the recipe is unchanged); out/ emptied for this run."""
    path = data_dir()
    with timed("data volume"):
        made = make_data(path)
        out = path / "out"
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    print(f"data volume: {path} ({'made' if made['made'] else 'reused'}, {made['rows']:,} rows)")
    return path


@pytest.fixture(scope="session")
def kueue(target: Target, kubectl: Kubectl) -> Iterator[str]:
    """Kueue, up before the release (the chart enables the operator's Kueue integration; an operator started after
    Kueue's CRDs watches its Workloads reliably): on the local harness the controller of hack/cluster/kueue.sh, stopped at
    the end; elsewhere the cluster's own Kueue, if any. Yields "" when it runs, else why not (test_e2e_kueue.py skips
    with it, or fails when it starts with "failed"; the other tests do not need Kueue)."""
    if target.kind != "harness":
        served = kubectl("get", "--raw", "/apis/kueue.x-k8s.io/v1beta2", check=False).returncode == 0
        yield "" if served else f"the {target.kind} cluster serves no kueue.x-k8s.io/v1beta2 (install Kueue >= 0.15)"
        return
    from harness.kueue import Kueue
    from harness.kueue import Unavailable as KueueUnavailable

    controller = Kueue(target.kubeconfig, cluster_env()["CLUSTER_STATE"], CACHE, build=CI)
    try:
        with timed("kueue up"):
            controller.start()
    except KueueUnavailable as exc:
        yield str(exc)
        return
    except RuntimeError as exc:  # kueue.sh up failed: only the tests that need Kueue fail
        yield f"failed: {exc}"
        return
    try:
        yield ""
    finally:
        if not KEEP:
            with timed("kueue down"):
                controller.stop()


@pytest.fixture(scope="session")
def release(target: Target, kubectl: Kubectl, helm: Helm, images: dict[str, Image], volume: Path,
            kueue: str) -> Iterator[str]:
    """`helm install` of charts/tfscore with the local images (pull policy Never: they are on the node, no registry),
    watching the jobs namespace (Pod Security "restricted" enforced), and the data volume's PV + claim there."""
    with timed("helm install"):
        clean_slate(kubectl, helm, target.kubeconfig)
        for ns, labels in ((RELEASE_NS, {}), (JOBS_NS, RESTRICTED)):
            kubectl("create", "namespace", ns)
            if labels:
                kubectl("label", "namespace", ns, *(f"{k}={v}" for k, v in labels.items()))
        # CRDs as the chart's README says to upgrade them (helm install skips CRDs that already exist)
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "charts" / "tfscore" / "crds"))
        pull = "IfNotPresent" if target.load is None else "Never"
        helm.install(RELEASE, RELEASE_NS, target.kubeconfig, helm_values(images["runtime"], images["operator"], pull))
        kubectl("-n", RELEASE_NS, "wait", "--for=condition=Available", "deployment",
                f"-l=app.kubernetes.io/instance={RELEASE}", "--timeout=180s")
        kubectl("-n", JOBS_NS, "apply", "-f", "-", input=yaml.safe_dump_all(volume_docs(volume)))
        kubectl("-n", JOBS_NS, "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/tfscore-e2e-data", "--timeout=60s")
    try:
        yield RELEASE
    finally:
        if not KEEP:
            with timed("helm uninstall + namespaces"):
                clean_slate(kubectl, helm, target.kubeconfig)


@pytest.fixture(scope="session")
def jobs(kubectl: Kubectl, release: str) -> Jobs:
    return Jobs(kubectl)


@pytest.fixture(scope="session")
def reference(volume: Path) -> Any:
    """The same job run locally (`tfscore run --master local[2]`): the predictions every cluster run must equal."""
    with timed("local reference run"):
        result = local_run(volume, E2E_CACHE / "reference")
    return {"result": result, "table": read_scores(E2E_CACHE / "reference")}
