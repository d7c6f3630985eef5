"""Timelines the operator tier records (test → [(step, seconds since the test started)]), printed by conftest.py at the
end of the session."""

from __future__ import annotations

TIMELINES: dict[str, list[tuple[str, float]]] = {}
