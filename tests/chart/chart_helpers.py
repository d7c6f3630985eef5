"""Shared by the chart tier's tests (a module of its own: tests import from here, never from conftest).

charts/tfscore is rendered by the pinned helm and checked by the real Kubernetes API server.

helm and kubectl come from the cluster harness cache (`hack/cluster/env.sh`: HELM, KUBECTL). The API server is the
operator tier's control-plane helper (tests/operator/operator_harness.py) in this tier's own state directory and on its own ports
(operator tier + 100), or $KUBECONFIG when set. Missing binaries skip with the reason, except under CI=true, where they
are built (`hack/cluster/build.sh all` for helm, `control-plane` for the API server) or the tier fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tfscore"
HERE = Path(__file__).resolve().parent
VALUES_ALL = HERE / "values-all.yaml"
CI = os.environ.get("CI", "").lower() == "true"


def _load_harness() -> Any:
    """The operator tier's harness module (control plane + operator process), loaded as a private copy whose state
    directory and ports are this tier's own: its globals are read at call time, and a copy leaves the operator tier's
    module untouched when both tiers run in one pytest process."""
    spec = importlib.util.spec_from_file_location("chart_harness", ROOT / "tests" / "operator" / "operator_harness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.TIER_CACHE = module.CACHE / "chart-tier"
    module.PORTS = {k: v + 100 for k, v in module.PORTS.items()}  # operator tier + 100
    return module


harness = _load_harness()


def unavailable(reason: str) -> None:
    """Skip with the reason; under CI=true the chart tier must run, so fail instead."""
    if CI:
        pytest.fail(f"chart tier cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def harness_env() -> dict[str, str]:
    """hack/cluster/env.sh as a dict (HELM, KUBECTL, K8S_VERSION, ...)."""
    out = subprocess.run(["bash", str(ROOT / "hack" / "cluster" / "env.sh")], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def _quiet(stderr: str) -> str:
    """helm's stderr without its note that crds/scoringjob.yaml is a symlink (it is, on purpose)."""
    return "\n".join(line for line in stderr.splitlines() if "found symbolic link in path" not in line)


class Helm:
    def __init__(self, path: str) -> None:
        self.path = path

    def run(self, *args: str, check: bool = True, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **({"KUBECONFIG": kubeconfig} if kubeconfig else {})}
        proc = subprocess.run([self.path, *args], capture_output=True, text=True, env=env)
        proc.stderr = _quiet(proc.stderr)
        if check and proc.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout[-2000:]}",
                        pytrace=False)
        return proc

    def _value_args(self, values: dict[str, Any] | None, files: Iterable[Path], tmp: Path) -> list[str]:
        args = []
        for f in files:
            args += ["-f", str(f)]
        if values:  # a values file keeps YAML types exact (no --set string/number guessing)
            path = tmp / f"values-{uuid.uuid4().hex[:8]}.yaml"
            path.write_text(yaml.safe_dump(values))
            args += ["-f", str(path)]
        return args

    def template_text(self, values: dict[str, Any] | None = None, files: Iterable[Path] = (), release: str = "t",
                      namespace: str = "tfscore-system", check: bool = True) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory() as tmp:
            return self.run("template", release, str(CHART), "--namespace", namespace,
                            *self._value_args(values, files, Path(tmp)), check=check)

    def template(self, values: dict[str, Any] | None = None, files: Iterable[Path] = (), release: str = "t",
                 namespace: str = "tfscore-system") -> list[dict[str, Any]]:
        text = self.template_text(values, files, release, namespace).stdout
        return [doc for doc in yaml.safe_load_all(text) if doc]

    def install(self, release: str, namespace: str, kubeconfig: str, values: dict[str, Any] | None = None,
                files: Iterable[Path] = ()) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory() as tmp:
            return self.run("install", release, str(CHART), "--namespace", namespace,
                            *self._value_args(values, files, Path(tmp)), kubeconfig=kubeconfig)


class Kubectl:
    def __init__(self, path: str, kubeconfig: str) -> None:
        self.path, self.kubeconfig = path, kubeconfig

    def __call__(self, *args: str, input: str | None = None, check: bool = True,
                 kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.path, "--kubeconfig", kubeconfig or self.kubeconfig, *args], input=input,
                              capture_output=True, text=True)
        if check and proc.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout[-2000:]}",
                        pytrace=False)
        return proc

    def can_i(self, verb: str, resource: str, sa: str, namespace: str | None = None) -> bool:
        resource, _, sub = resource.partition("/")  # "pods/exec": a subresource, not a pod named exec
        args = ["auth", "can-i", verb, resource, f"--as=system:serviceaccount:{sa}"]
        args += [f"--subresource={sub}"] if sub else []
        args += ["-n", namespace] if namespace else []
        return self(*args, check=False).stdout.strip() == "yes"

    def wait_established(self, *crds: str) -> None:
        """Poll (kubectl wait errors out while a new CRD has no .status.conditions yet)."""
        path = '{.status.conditions[?(@.type=="Established")].status}'
        for crd in crds:
            harness.wait_for(f"CRD {crd} established", lambda crd=crd: self(
                "get", "crd", crd, "-o", f"jsonpath={path}", check=False).stdout.strip() == "True")

    def token_kubeconfig(self, sa: str, path: Path) -> str:
        """A kubeconfig that authenticates as ServiceAccount `namespace:name` (TokenRequest), as a pod would."""
        namespace, name = sa.split(":")
        token = self("-n", namespace, "create", "token", name, "--duration=1h").stdout.strip()
        admin = yaml.safe_load(Path(self.kubeconfig).read_text())
        cluster = admin["clusters"][0]["cluster"]
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}]}))
        return str(path)


RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str = "", namespace: str | None = None) -> dict[str, Any]:
    found = [d for d in kinds(docs, kind) if d["metadata"]["name"].endswith(name_suffix)
             and (namespace is None or d["metadata"].get("namespace") == namespace)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix} in {namespace}, got {[d['metadata'] for d in found]}"
    return found[0]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def pod_from(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    """The Pod a Deployment's ReplicaSet would create (same labels and spec)."""
    template = deployment["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": deployment["metadata"]["namespace"],
                         "labels": template["metadata"]["labels"]},
            "spec": template["spec"]}
