"""Helpers of the image tier: build images with images/build.sh and run containers the way the operator's pods run."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UID = 1000
MANIFEST = "/opt/tfscore/image-manifest.json"
# Writable places on a read-only root filesystem, as the operator's pods get them (emptyDirs).
SCRATCH = ("/tmp", "/home/tfscore", "/var/data/spark-local")


def build(kind: str) -> str:
    """images/build.sh KIND → the image reference (a no-op when the content hash's tag exists)."""
    out = subprocess.run(["bash", str(ROOT / "images/build.sh"), kind], stdout=subprocess.PIPE, stderr=sys.stderr,
                         text=True, env={**os.environ, "ENGINE": "podman"})
    if out.returncode != 0:
        pytest.fail(f"images/build.sh {kind} failed (exit {out.returncode}); its output is above")
    return out.stdout.strip().splitlines()[-1]


def derived_image(base: str, name: str, containerfile: str) -> str:
    """A small image FROM `base` (tagged by a hash of base + recipe, so it is built once per runtime image)."""
    tag = hashlib.sha256(f"{base}\n{containerfile}".encode()).hexdigest()[:12]
    ref = f"localhost/tfscore/test-{name}:{tag}"
    if subprocess.run(["podman", "image", "exists", ref]).returncode != 0:
        subprocess.run(["podman", "build", "--network", "none", "-t", ref, "-f", "-", str(ROOT / "images")],
                       input=containerfile, text=True, check=True, stdout=subprocess.DEVNULL)
    return ref


def run_args(image: str, *command: str, volumes: dict[str, str] | None = None, env: dict[str, str] | None = None,
             network: str = "none", name: str | None = None, detach: bool = False) -> list[str]:
    """`podman run` as the operator's pods run: uid 1000, read-only root, scratch tmpfs, all capabilities dropped."""
    args = ["podman", "run", "--rm", "--read-only", "--user", f"{UID}:{UID}", "--cap-drop", "all",
            "--security-opt", "no-new-privileges", "--network", network]
    for path in SCRATCH:
        args += ["--tmpfs", f"{path}:rw,mode=1777"]
    for host, inside in (volumes or {}).items():
        args += ["-v", f"{host}:{inside}"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    if name:
        args += ["--name", name, "--label", "tfscore-test=image-tier"]
    if detach:
        args.append("-d")
    return [*args, image, *command]


def run(image: str, *command: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(run_args(image, *command, **kwargs), capture_output=True, text=True, timeout=timeout)


def shared_dir(path: Path) -> Path:
    """A host directory containers (uid 1000) can write into."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path
