"""Shared API pieces: quantities (api/common.py)."""

from __future__ import annotations

import pytest

from tfscore.api.common import memory_mib


@pytest.mark.parametrize("text, mib", [("512m", 512), ("2g", 2048), ("2Gi", 2048), ("1.5g", 1536), ("1024Ki", 1)])
def test_memory_quantities(text, mib):
    assert memory_mib(text) == mib
