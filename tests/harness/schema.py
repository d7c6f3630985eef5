"""Walking an OpenAPI v3 schema (a rendered CRD's or a pydantic model's) for the tests that check every node of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(node: dict[str, Any], path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, node) below `node`: properties by name, list items as `[]`, map values as `{}`."""
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")
