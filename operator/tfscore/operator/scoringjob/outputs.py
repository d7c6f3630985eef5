"""Which other active ScoringJob holds the output a job is about to write (pure).

Two runs never commit into one output at once: the runtime's lease refuses the second commit (runtime/commit.py), but
only after it has scored everything. So the operator does not start a job whose output (output.uri or quarantineUri,
normalised by api/uris.py: `s3a://b/x/` and `s3://b/./x` are one place, and a path inside another overlaps it) overlaps
that of another active job that is ahead of it: already started, or older and not started either (the oldest wins; ties
by namespace/name). The job waits in Pending with condition OutputInUse until the holder finishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tfscore.api import uris

FINISHED = ("Succeeded", "Failed")
CONDITION = "OutputInUse"


def written(body: Mapping[str, Any]) -> list[str]:
    spec = body.get("spec") or {}
    out = [(spec.get("output") or {}).get("uri"), spec.get("quarantineUri")]
    return [u for u in out if isinstance(u, str) and u]


def _active(body: Mapping[str, Any]) -> bool:
    st = body.get("status") or {}
    if st.get("phase") in FINISHED or (body.get("metadata") or {}).get("deletionTimestamp"):
        return False
    # Never started and suspended: it writes nothing until it is resumed.
    return bool(st.get("attempts")) or not (body.get("spec") or {}).get("suspend")


def _rank(body: Mapping[str, Any]) -> tuple[int, str, str, str]:
    meta, st = body["metadata"], body.get("status") or {}
    return (0 if st.get("attempts") else 1, meta.get("creationTimestamp") or "", meta.get("namespace") or "",
            meta.get("name") or "")


def _overlap(a: list[str], b: list[str]) -> bool:
    return any(uris.overlap(x, y) for x in a for y in b)


def holder(body: Mapping[str, Any], jobs: Iterable[Mapping[str, Any]]) -> str | None:
    """'namespace/name' of the active job ahead of `body` that writes where it would, or None. Only asked before the
    first start: a job that has started holds its output itself."""
    if (body.get("status") or {}).get("attempts"):
        return None
    mine, me = written(body), body["metadata"]["uid"]
    if not mine:
        return None
    ahead = [j for j in jobs if j["metadata"]["uid"] != me and _active(j) and _rank(j) < _rank(body)
             and _overlap(mine, written(j))]
    if not ahead:
        return None
    first = min(ahead, key=_rank)["metadata"]
    return f"{first['namespace']}/{first['name']}"
