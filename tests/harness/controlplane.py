"""A control-plane-only cluster (etcd + kube-apiserver + kube-controller-manager) from hack/cluster, in a tier's own
state directory and on its own ports, so a harness cluster someone else runs on this machine is never touched
(hack/cluster/README.md: any number of control-plane-only clusters may run beside the node-level one).

`kubeconfig_var` names an environment variable that, when set, points at an existing disposable cluster to use as is
(plain $KUBECONFIG is deliberately ignored: a developer's shell pointing at a real cluster must not get test objects).
Each start wipes the tier's etcd data (certs are kept), so every run begins with an empty cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from harness.common import CACHE, CLUSTER, ROOT, Unavailable, env_port_offset, tier_dir, wait_for

CP_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
BASE_PORTS = {"TFSCORE_ETCD_PORT": 16479, "TFSCORE_ETCD_PEER_PORT": 16480, "TFSCORE_APISERVER_PORT": 16543,
              "TFSCORE_KCM_PORT": 16357, "TFSCORE_SCHEDULER_PORT": 16359, "TFSCORE_KUBELET_PORT": 16350,
              "TFSCORE_KUBELET_HEALTHZ_PORT": 16348, "TFSCORE_PROXY_HEALTHZ_PORT": 16356,
              "TFSCORE_PROXY_METRICS_PORT": 16349}
CRDS = ("scoringjob.yaml", "scoringpolicy.yaml", "scoringschedule.yaml")


def k8s_version() -> str:
    lib = CLUSTER / "lib.sh"
    for line in (lib.read_text() if lib.exists() else "").splitlines():
        if line.startswith("K8S_VERSION="):
            return line.split(":-", 1)[1].split("}", 1)[0]
    raise Unavailable("hack/cluster/lib.sh does not pin K8S_VERSION")


class ControlPlane:
    """Start (or reuse $`kubeconfig_var`) and stop one tier's control plane."""

    def __init__(self, tier: str, port_offset: int = 0, kubeconfig_var: str = "", build: bool = False,
                 cache: Path = CACHE) -> None:
        extra = env_port_offset()
        self.tier_cache = tier_dir(tier, cache)
        self.cache = cache
        self.ports = {k: v + port_offset + extra for k, v in BASE_PORTS.items()}
        self.kubeconfig_var, self.build = kubeconfig_var, build
        self.state: Path | None = None
        self.kubeconfig = ""

    def env(self) -> dict[str, str]:
        """Environment for hack/cluster scripts: own state and ports; binaries and Go caches shared with the harness."""
        self.tier_cache.mkdir(parents=True, exist_ok=True)
        for shared in ("k8s", "go"):
            link = self.tier_cache / shared
            if not link.exists() and not link.is_symlink():
                (self.cache / shared).mkdir(parents=True, exist_ok=True)
                link.symlink_to(self.cache / shared)
        return {**os.environ, "TFSCORE_CACHE": str(self.tier_cache),
                "TFSCORE_CLUSTER_STATE": str(self.tier_cache / "cluster" / "state"),
                **{k: str(v) for k, v in self.ports.items()}}

    @property
    def apiserver_port(self) -> int:
        return self.ports["TFSCORE_APISERVER_PORT"]

    def start(self) -> str:
        if self.kubeconfig_var and os.environ.get(self.kubeconfig_var):
            self.kubeconfig = os.environ[self.kubeconfig_var]
            return self.kubeconfig
        if not (CLUSTER / "up.sh").exists():
            raise Unavailable("hack/cluster/up.sh is missing (cluster harness not present)")
        env = self.env()
        bin_dir = self.cache / "k8s" / k8s_version() / "bin"
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
        """The control-plane processes this object started (none when an existing cluster was used)."""
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
        down = subprocess.run(["bash", str(CLUSTER / "down.sh")], env=self.env(), capture_output=True, text=True)
        if down.returncode != 0:
            raise RuntimeError(f"hack/cluster/down.sh failed:\n{down.stderr[-3000:]}")


def kubeconfig_fixture(tier: str, port_offset: int) -> Any:
    """A tier's session fixture `kubeconfig`: its own control plane (state dir `<tier>-tier`, ports + `port_offset`;
    $TFSCORE_OPERATOR_KUBECONFIG instead when set), built when missing under CI=true, stopped at the end."""
    import pytest

    from harness.common import CI

    @pytest.fixture(scope="session")
    def kubeconfig() -> Iterator[str]:
        plane = ControlPlane(f"{tier}-tier", port_offset=port_offset, kubeconfig_var="TFSCORE_OPERATOR_KUBECONFIG",
                             build=CI)
        yield from serve(plane, tier)

    return kubeconfig


def serve(plane: ControlPlane, tier: str) -> Iterator[str]:
    """The plane's kubeconfig while it runs (skip, or under CI=true fail, when it cannot), stopped afterwards."""
    from harness.common import skip_or_fail

    started = time.monotonic()
    try:
        path = plane.start()
    except Unavailable as exc:
        skip_or_fail(tier, str(exc))
    print(f"\n{tier} tier: control plane ready in {time.monotonic() - started:.1f}s ({path})")
    try:
        yield path
    finally:
        plane.stop()


def api_client(kubeconfig: str, pool: int = 8) -> Any:
    from kubernetes import client, config

    conf = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=conf)
    conf.connection_pool_maxsize = pool
    return client.ApiClient(conf)


def apply_crds(api: Any, files: tuple[str, ...] = CRDS) -> None:
    """tfscore's CRDs (crds/*.yaml) created or replaced, then waited for until established and served."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    ext = client.ApiextensionsV1Api(api)
    for file in files:
        body = yaml.safe_load((ROOT / "crds" / file).read_text())
        name = body["metadata"]["name"]
        try:
            ext.create_custom_resource_definition(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            body["metadata"]["resourceVersion"] = ext.read_custom_resource_definition(name).metadata.resource_version
            ext.replace_custom_resource_definition(name, body)

        def established(name: str = name) -> bool:
            got = ext.read_custom_resource_definition(name)
            return any(c.type == "Established" and c.status == "True" for c in got.status.conditions or [])

        wait_for(f"the CRD {name} to be established", established)
    time.sleep(1.0)  # its OpenAPI (defaulting, validation) is served a moment after Established
