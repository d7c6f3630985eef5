"""Layering: the operator imports nothing from Spark or TensorFlow; the runtime nothing from Kubernetes libraries.

Checked in a fresh interpreter (sys.modules after importing every module of the package), so an import hidden in any
module of the package, or pulled in transitively, is caught.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import importlib, json, pkgutil, sys
pkg = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after_importing(package: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, package], check=True, capture_output=True, text=True,
                         timeout=300)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def roots(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_operator_imports_no_spark_or_tensorflow():
    found = roots(loaded_after_importing("tfscore.operator")) & {"pyspark", "tensorflow", "py4j", "pyarrow", "keras"}
    assert not found, f"tfscore.operator pulls in {sorted(found)}"


def test_runtime_imports_no_kubernetes_or_kopf():
    pytest.importorskip("pyspark", reason="the runtime's dependencies are not installed in this venv")
    found = roots(loaded_after_importing("tfscore.runtime")) & {"kubernetes", "kopf", "kubernetes_asyncio", "kr8s"}
    assert not found, f"tfscore.runtime pulls in {sorted(found)}"


def test_api_imports_neither():
    found = roots(loaded_after_importing("tfscore.api")) & {"pyspark", "tensorflow", "kubernetes", "kopf"}
    assert not found, f"tfscore.api pulls in {sorted(found)}"
