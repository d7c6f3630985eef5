"""The runtime tier's shared pieces: the CLI in a fresh process (as a user runs it) and ScoringJob manifests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FEATURES = [f"f{j:02d}" for j in range(8)]  # the columns of the `models` fixture's MLP input (tfscore.testing)
TFSCORE = str(Path(sys.executable).parent / "tfscore")


def tfscore(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, as a user runs it; `env` replaces this process's environment."""
    env = {**(os.environ if env is None else env), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([TFSCORE, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def children(pid: int) -> list[int]:
    """The pids of a process's children (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def job_doc(model_uri, input_uri, output_uri, /, **spec) -> dict:
    """A ScoringJob manifest; `spec` keys override/extend (model/input/output dicts are merged). No model_uri: the
    spec gives `models` instead."""
    doc = {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringJob", "metadata": {"name": "t"},
           "spec": {**({"model": {"uri": str(model_uri)}} if model_uri is not None else {}),
                    "input": {"uri": str(input_uri)}, "output": {"uri": str(output_uri)}}}
    for key, value in spec.items():
        if key in ("model", "input", "output"):
            doc["spec"][key].update(value)
        else:
            doc["spec"][key] = value
    return doc
