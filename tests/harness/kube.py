"""The harness's pinned kubectl and helm (hack/cluster/env.sh: KUBECTL, HELM) as small wrappers for tests."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.common import ROOT, wait_for

CHART = ROOT / "charts" / "tfscore"
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}


def _quiet(stderr: str) -> str:
    """helm's stderr without its note that crds/scoringjob.yaml is a symlink (it is, on purpose)."""
    return "\n".join(line for line in stderr.splitlines() if "found symbolic link in path" not in line)


class Helm:
    """The pinned helm, on one chart directory."""

    def __init__(self, path: str, chart: Path = CHART) -> None:
        self.path, self.chart = path, chart

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
            return self.run("template", release, str(self.chart), "--namespace", namespace,
                            *self._value_args(values, files, Path(tmp)), check=check)

    def template(self, values: dict[str, Any] | None = None, files: Iterable[Path] = (), release: str = "t",
                 namespace: str = "tfscore-system") -> list[dict[str, Any]]:
        text = self.template_text(values, files, release, namespace).stdout
        return [doc for doc in yaml.safe_load_all(text) if doc]

    def install(self, release: str, namespace: str, kubeconfig: str, values: dict[str, Any] | None = None,
                files: Iterable[Path] = ()) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory() as tmp:
            return self.run("install", release, str(self.chart), "--namespace", namespace,
                            *self._value_args(values, files, Path(tmp)), kubeconfig=kubeconfig)


class Kubectl:
    """The pinned kubectl on one kubeconfig; a failed command fails the test with its output."""

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
            wait_for(f"CRD {crd} established", lambda crd=crd: self(
                "get", "crd", crd, "-o", f"jsonpath={path}", check=False).stdout.strip() == "True")

    def token_kubeconfig(self, sa: str, path: Path, pod: str | None = None) -> str:
        """A kubeconfig that authenticates as ServiceAccount `namespace:name` (TokenRequest); bound to `pod` (the
        token names it in the request's user info) as a pod's own mounted token is."""
        namespace, name = sa.split(":")
        bound = ["--bound-object-kind=Pod", f"--bound-object-name={pod}"] if pod else []
        token = self("-n", namespace, "create", "token", name, "--duration=1h", *bound).stdout.strip()
        admin = yaml.safe_load(Path(self.kubeconfig).read_text())
        cluster = admin["clusters"][0]["cluster"]
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}]}))
        return str(path)
