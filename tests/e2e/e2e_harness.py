"""The end-to-end tier's cluster, images, data volume and release (imported by conftest.py and the tests; no fixtures).

Target (first that applies):
1. $KUBECONFIG set: that cluster, used as is (nothing started or stopped; the harness's own kubeconfig means target 3).
   Images: loaded with `kind load` when its context is a kind cluster; otherwise the node must already have them (or
   set TFSCORE_E2E_RUNTIME_IMAGE / TFSCORE_E2E_OPERATOR_IMAGE to refs it can pull). The data volume is a local
   PersistentVolume at the path this process writes: the node must see this machine's filesystem.
2. docker + kind work: a kind cluster `tfscore-e2e` whose node mounts the data directory at the same path; images built
   with docker and `kind load`ed; deleted at the end. (Not exercised on the project's CI machine, which has no Docker.)
3. Otherwise the local harness: `hack/cluster/up.sh node`, images imported with `hack/cluster/load-image.sh`, and
   `hack/cluster/down.sh` at the end, but only when this run started it (a harness already up is reused and left up).

helm and kubectl are the harness's pinned builds (hack/cluster/env.sh), wrapped by the shared test harness (tests/harness).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from e2e_data import ROW_GROUP
from e2e_data import ROWS as ROWS_DEFAULT

from harness.common import CACHE, CI, CLUSTER, ROOT, Unavailable, cluster_env, run
from harness.kube import Helm, Kubectl

HERE = Path(__file__).resolve().parent
EXAMPLE = ROOT / "examples" / "e2e-job.yaml"
E2E_CACHE = CACHE / "e2e"
KEEP = os.environ.get("TFSCORE_E2E_KEEP") == "1"   # leave cluster, release and namespaces up (debugging)
KIND_CLUSTER = "tfscore-e2e"
RELEASE, RELEASE_NS, JOBS_NS = "tfscore-e2e", "tfscore-e2e-system", "tfscore-e2e"
VOLUME_MOUNT = "/data"   # where examples/e2e-job.yaml mounts the volume in driver and executor pods
ROWS = int(os.environ.get("TFSCORE_E2E_ROWS", ROWS_DEFAULT))
TASKS = -(-ROWS // ROW_GROUP)   # one Spark task per 5,000-row row group (spark.tfscore.splitRows in the example)
TIMINGS: dict[str, float] = {}   # step -> seconds, printed at the end of the session (conftest.py)


@contextmanager
def timed(step: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS[step] = round(time.monotonic() - start, 1)


# ---------------------------------------------------------------- the cluster


@dataclass
class Target:
    kind: str                                  # kubeconfig | kind | harness
    kubeconfig: str
    load: Callable[[str], None] | None = None  # put a locally built image on the node
    pin: Callable[[str], str] | None = None    # an image on the node → the same image by digest (repo@sha256:…)
    teardown: Callable[[], None] | None = None  # only for what this run started
    engine: str = ""                           # image build engine ("" = images/build.sh picks)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.kind} ({self.kubeconfig})" + "".join(f"; {n}" for n in self.notes)


def _harness_load(ref: str) -> None:
    run(["bash", str(CLUSTER / "load-image.sh"), ref], f"hack/cluster/load-image.sh {ref}")


def _harness_pin(ref: str) -> str:
    out = run(["bash", str(CLUSTER / "load-image.sh"), "--pin", ref], f"hack/cluster/load-image.sh --pin {ref}")
    return out.strip().splitlines()[-1]


def _kind_load(ref: str) -> None:
    run(["kind", "load", "docker-image", ref, "--name", KIND_CLUSTER], f"kind load {ref}")


def _kind_works() -> bool:
    if not shutil.which("kind") or not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _current_context(kubeconfig: str) -> str:
    try:
        return (yaml.safe_load(Path(kubeconfig).read_text()) or {}).get("current-context") or ""
    except (OSError, yaml.YAMLError):
        return ""


def _harness_node_up(env: dict[str, str]) -> bool:
    """The harness's node level is already running (then this run reuses it and leaves it up)."""
    pid_file = Path(env["CLUSTER_STATE"]) / "pids" / "kubelet.pid"
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    ready = subprocess.run([env["KUBECTL"], "--kubeconfig", env["KUBECONFIG"], "--request-timeout=5s", "get", "node",
                            env["NODE_NAME"], "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"],
                           capture_output=True, text=True)
    return ready.returncode == 0 and ready.stdout.strip() == "True"


def select_target() -> Target:
    env = cluster_env()
    if os.environ.get("KUBECONFIG"):
        path = os.environ["KUBECONFIG"]
        if _same_file(path, env["KUBECONFIG"]):  # `export $(hack/cluster/env.sh)`: the harness, started if down
            return _start_harness(env)
        if _current_context(path).startswith("kind-") and _kind_works():
            return Target("kubeconfig", path, load=_kind_load, engine="docker", notes=["a kind cluster"])
        return Target("kubeconfig", path, notes=["images must already be on the node"])
    if _kind_works():
        return _start_kind()
    return _start_harness(env)


def _start_kind() -> Target:
    """A one-node kind cluster whose node sees the data directory at the same path (extraMounts)."""
    E2E_CACHE.mkdir(parents=True, exist_ok=True)
    volume = data_dir()
    volume.mkdir(parents=True, exist_ok=True)
    config = E2E_CACHE / "kind.yaml"
    config.write_text(yaml.safe_dump({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [
        {"role": "control-plane", "extraMounts": [{"hostPath": str(volume), "containerPath": str(volume)}]}]}))
    kubeconfig = str(E2E_CACHE / "kind.kubeconfig")
    run(["kind", "create", "cluster", "--name", KIND_CLUSTER, "--config", str(config), "--kubeconfig", kubeconfig,
         "--wait", "120s"], "kind create cluster")

    def down() -> None:
        run(["kind", "delete", "cluster", "--name", KIND_CLUSTER], "kind delete cluster")

    return Target("kind", kubeconfig, load=_kind_load, teardown=down, engine="docker")


def _start_harness(env: dict[str, str]) -> Target:
    if not (CLUSTER / "up.sh").exists():
        raise Unavailable("hack/cluster/up.sh is missing (cluster harness not present)")
    if not CI and not Path(env["K8S_BIN"], "kubelet").exists():
        raise Unavailable(f"the local cluster is not built ({env['K8S_BIN']}/kubelet missing): run `make cluster-build`")
    was_up = _harness_node_up(env)
    try:  # also when it is up: up.sh is idempotent and restores what it owns (the pause image, config)
        run(["bash", str(CLUSTER / "up.sh"), "node"], "hack/cluster/up.sh node")
    except RuntimeError:
        if not was_up:
            _harness_down()
        raise
    if was_up:
        return Target("harness", env["KUBECONFIG"], load=_harness_load, pin=_harness_pin,
                      notes=["already running: reused, left up"])
    return Target("harness", env["KUBECONFIG"], load=_harness_load, pin=_harness_pin, teardown=_harness_down,
                  notes=["started here"])


def _harness_down() -> None:
    run(["bash", str(CLUSTER / "down.sh")], "hack/cluster/down.sh")


# ---------------------------------------------------------------- images


@dataclass(frozen=True)
class Image:
    ref: str

    @property
    def values(self) -> dict[str, str]:
        """The chart's {repository, digest|tag} for this ref."""
        if "@" in self.ref:
            repo, digest = self.ref.split("@", 1)
            return {"repository": repo, "digest": digest}
        slash = self.ref.rfind("/")
        colon = self.ref.rfind(":")
        if colon > slash:
            return {"repository": self.ref[:colon], "tag": self.ref[colon + 1:]}
        return {"repository": self.ref, "tag": "latest"}


def build_image(kind: str, engine: str = "") -> Image:
    """images/build.sh (the images' own build: content-hash tags, nothing rebuilt when unchanged)."""
    env = {"ENGINE": engine} if engine else None
    out = run(["bash", str(ROOT / "images" / "build.sh"), kind], f"images/build.sh {kind}", env=env)
    return Image(out.strip().splitlines()[-1])


def node_images(kubectl: Kubectl) -> set[str]:
    """Image names the node's container runtime has (the kubelet reports them in the node status)."""
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {name for node in nodes for image in node["status"].get("images") or [] for name in image.get("names") or []}


def ensure_on_node(target: Target, kubectl: Kubectl, image: Image) -> tuple[Image, bool]:
    """Load `image` unless the node already has it; the image as the chart gets it (by digest where the target can
    name it so: the harness) and whether it was loaded now."""
    loaded = False
    if image.ref not in node_images(kubectl):
        if target.load is None:
            raise Unavailable(f"image {image.ref} is not on the cluster's node and this target cannot load images: set "
                              "TFSCORE_E2E_RUNTIME_IMAGE/TFSCORE_E2E_OPERATOR_IMAGE to refs the cluster can pull")
        target.load(image.ref)
        loaded = True
    if target.pin is not None and "@" not in image.ref:
        image = Image(target.pin(image.ref))
    return image, loaded


# ---------------------------------------------------------------- the data volume, the job manifest


def data_dir() -> Path:
    return Path(os.environ.get("TFSCORE_E2E_DATA_DIR") or E2E_CACHE / "volume")


def make_data(volume: Path) -> dict[str, Any]:
    """Model + input on the volume (tests/e2e/e2e_data.py, in its own process: TensorFlow stays out of pytest)."""
    out = run([sys.executable, str(HERE / "e2e_data.py"), str(volume), "--rows", str(ROWS)], "tests/e2e/e2e_data.py")
    return json.loads(out.strip().splitlines()[-1])


def example_docs() -> dict[str, dict[str, Any]]:
    """examples/e2e-job.yaml by kind: PersistentVolume, PersistentVolumeClaim, ScoringJob."""
    return {doc["kind"]: doc for doc in yaml.safe_load_all(EXAMPLE.read_text()) if doc}


def volume_docs(volume: Path) -> list[dict[str, Any]]:
    """The example's PersistentVolume (pointing at `volume`) and claim."""
    docs = example_docs()
    pv, pvc = docs["PersistentVolume"], docs["PersistentVolumeClaim"]
    pv["spec"]["local"]["path"] = str(volume)
    return [pv, pvc]


def job_manifest(name: str, **spec_changes: Any) -> dict[str, Any]:
    """The example's ScoringJob under another name, writing to /data/out/<name>."""
    job = example_docs()["ScoringJob"]
    job["metadata"]["name"] = name
    job["spec"]["output"]["uri"] = f"{VOLUME_MOUNT}/out/{name}"
    job["spec"].update(spec_changes)
    return job


def on_host(uri: str, volume: Path) -> str:
    """A path inside the pods' volume mount → the same file on this machine."""
    assert uri.startswith(VOLUME_MOUNT + "/"), uri
    return str(volume / uri[len(VOLUME_MOUNT) + 1:])


def local_run(volume: Path, out: Path) -> dict[str, Any]:
    """`tfscore run` of the example job on this machine (Spark local[2]) into `out`; its result JSON."""
    job = example_docs()["ScoringJob"]
    spec = job["spec"]
    spec["model"]["uri"] = on_host(spec["model"]["uri"], volume)
    spec["input"]["uri"] = on_host(spec["input"]["uri"], volume)
    spec["output"]["uri"] = str(out)
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(job, f)
    try:
        tfscore = str(Path(sys.executable).parent / "tfscore")
        stdout = run([tfscore, "run", f.name, "--master", "local[2]", "--json"], "local tfscore run",
                     env={"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable})
    finally:
        os.unlink(f.name)
    return json.loads(stdout[stdout.index("{"):])


def read_scores(path: str | Path) -> Any:
    """The output's rows sorted by id (a pyarrow Table)."""
    import pyarrow.dataset as ds

    return ds.dataset(str(path), format="parquet").to_table().sort_by("id")


# ---------------------------------------------------------------- the release


def helm_values(runtime: Image, operator: Image, pull_policy: str) -> dict[str, Any]:
    return {
        "watchNamespaces": [JOBS_NS],
        "image": {**operator.values, "pullPolicy": pull_policy},
        "runtime": {"image": runtime.values, "pullPolicy": pull_policy},
        "operator": {"backoffBaseSeconds": 1, "backoffMaxSeconds": 5},   # a killed driver is retried at once
        "kueue": {"enabled": True},   # labelled jobs wait for Kueue (test_e2e_kueue.py); the others are unaffected
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
    }


def clean_slate(kubectl: Kubectl, helm: Helm, kubeconfig: str) -> None:
    """Remove what an interrupted earlier run left: the release, its namespaces, the PersistentVolume."""
    if helm.run("status", RELEASE, "-n", RELEASE_NS, check=False, kubeconfig=kubeconfig).returncode == 0:
        helm.run("uninstall", RELEASE, "-n", RELEASE_NS, "--wait", kubeconfig=kubeconfig)
    kubectl("delete", "namespace", JOBS_NS, RELEASE_NS, "--ignore-not-found", "--wait=true", "--timeout=180s")
    kubectl("delete", "persistentvolume", example_docs()["PersistentVolume"]["metadata"]["name"], "--ignore-not-found",
            "--wait=true", "--timeout=60s")


class Jobs:
    """ScoringJobs, their pods and diagnostics in the jobs namespace, through kubectl (what a user types)."""

    def __init__(self, kubectl: Kubectl, namespace: str = JOBS_NS) -> None:
        self.kubectl, self.ns = kubectl, namespace

    def __call__(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.kubectl("-n", self.ns, *args, **kw)

    def apply(self, *docs: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        return self("apply", "-f", "-", input=yaml.safe_dump_all(docs), check=check)

    def get(self, name: str) -> dict[str, Any] | None:
        """The ScoringJob, or None when kubectl cannot read it (not there, or the API server blinked)."""
        proc = self("get", "scoringjob", name, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def status(self, name: str) -> dict[str, Any]:
        return (self.get(name) or {}).get("status") or {}

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return json.loads(self("get", "pods", "-l", selector, "-o", "json").stdout)["items"]

    def driver_pods(self, name: str) -> list[dict[str, Any]]:
        return sorted(self.pods(f"tfscore.io/job={name},tfscore.io/role=driver"), key=lambda p: p["metadata"]["name"])

    def executor_pods(self, name: str) -> list[dict[str, Any]]:
        return [p for p in self.pods(f"tfscore.io/job={name},tfscore.io/role=executor")
                if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"]

    def table(self, name: str) -> dict[str, str]:
        """`kubectl get sj NAME` (the default columns) as {column: value}."""
        lines = self("get", "sj", name).stdout.splitlines()
        header, row = lines[0].split(), lines[1].split()
        return dict(zip(header, row, strict=False))

    def wait(self, name: str, what: str, check: Callable[[dict[str, Any]], Any], timeout: float,
             interval: float = 1.0) -> Any:
        """Poll until `check(status)` returns something truthy (returned); fail at once, with diagnostics, when the job
        fails or `check` raises AssertionError; on timeout, the same diagnostics."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(name)
            if status.get("phase") == "Failed":
                raise AssertionError(f"{name} failed: {status.get('message')}\n{self.diagnose(name)}")
            try:
                got = check(status)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{self.diagnose(name)}") from None
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {name}: {what}; status: {status}\n"
                                     f"{self.diagnose(name)}")
            time.sleep(interval)

    def succeeded(self, name: str, timeout: float = 480) -> dict[str, Any]:
        return self.wait(name, "phase Succeeded", lambda s: s.get("phase") == "Succeeded" and s, timeout)

    def progress_mid_run(self, name: str, timeout: float = 300) -> dict[str, Any]:
        """The status shows scoring under way (the driver's progress annotation, relayed by the operator)."""
        def check(s: dict[str, Any]) -> Any:
            p = s.get("progress") or {}
            assert s.get("phase") != "Succeeded", f"{name} finished before its status showed progress mid-run"
            return 0 < p.get("tasksDone", 0) < p.get("tasksTotal", 0) and s
        return self.wait(name, "progress mid-run in the status", check, timeout)

    def tasks_writing(self, name: str, volume: Path, tasks: int, timeout: float = 300) -> int:
        """Scoring is under way and far from done: >= 2 task-attempt files in the job's staging on the volume (each task
        opens its file at its first batch; they stay in _attempts/ until the commit), at most 3/4 of the tasks. Watched
        on the volume itself (every 0.2 s): finer than the progress annotation, which the driver patches every 2 s."""
        out = volume / "out"

        def check(s: dict[str, Any]) -> int:
            assert s.get("phase") != "Succeeded", f"{name} finished before a fault could be injected"
            for _ in range(10):
                n = sum(1 for _ in out.glob(f".{name}.tfscore-out-*/_attempts/*"))
                if n >= 2:
                    assert n <= tasks * 3 // 4, f"{name} already had {n} of {tasks} tasks writing; make it longer"
                    return n
                time.sleep(0.2)
            return 0
        return self.wait(name, "tasks writing into the staging", check, timeout, interval=0)

    def diagnose(self, name: str) -> str:
        """What a human would look at: the job, its pods, events, driver and operator log tails."""
        parts = []
        for args in (("get", "sj,pods,svc,cm", "-o", "wide"),
                     ("get", "events", "--sort-by=.lastTimestamp"),
                     ("get", "sj", name, "-o", "jsonpath={.status}")):
            proc = self(*args, check=False)
            parts.append(f"$ kubectl -n {self.ns} {' '.join(args)}\n{proc.stdout[-6000:]}{proc.stderr[-1000:]}")
        for pod in self.driver_pods(name)[-2:]:
            proc = self("logs", pod["metadata"]["name"], "--tail=40", check=False)
            parts.append(f"$ kubectl logs {pod['metadata']['name']}\n{proc.stdout}{proc.stderr}")
        proc = self.kubectl("-n", RELEASE_NS, "logs", "-l", "app.kubernetes.io/component=operator", "--tail=40",
                            check=False)
        parts.append(f"$ kubectl -n {RELEASE_NS} logs (operator)\n{proc.stdout}{proc.stderr}")
        return "\n".join(parts)
