"""Image tier: podman-built images (images/build.sh, cached by content hash), run the way Kubernetes runs them.

Without podman the tier skips with the reason; under CI=true it must run: hack/podman-setup.sh installs podman first,
and a failure fails the tier instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from imagekit import ROOT, build


def pytest_collection_modifyitems(config, items):
    here = str(ROOT / "tests" / "image")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.image)


def _podman_works() -> str | None:
    """None when podman runs containers here, else why not."""
    if not shutil.which("podman"):
        return "podman is not installed (hack/podman-setup.sh installs it)"
    out = subprocess.run(["podman", "info"], capture_output=True, text=True)
    if out.returncode != 0:
        return f"podman info fails: {(out.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


@pytest.fixture(scope="session")
def podman() -> str:
    reason = _podman_works()
    if reason and os.environ.get("CI") == "true":
        subprocess.run(["bash", str(ROOT / "hack/podman-setup.sh")], check=True, stdout=subprocess.DEVNULL)
        reason = _podman_works()
        if reason:
            pytest.fail(f"image tier under CI=true: {reason}")
    if reason:
        pytest.skip(reason)
    return "podman"


@pytest.fixture(scope="session")
def runtime_image(podman) -> str:
    return build("runtime")
