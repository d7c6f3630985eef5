"""Pure helpers over Kubernetes objects as plain dicts: timestamps, conditions, JSON merge patches, ownership.

Every kind's reconcile uses these; none of them does I/O or reads the clock (callers pass `now`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tfscore.api.common import Condition


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def set_condition(conditions: list[Condition], type_: str, status: bool, reason: str, message: str,
                  now: datetime) -> list[Condition]:
    """Conditions with `type_` set; lastTransitionTime changes only when its status flips."""
    value = "True" if status else "False"
    out, found = [], False
    for cond in conditions:
        if cond.type == type_:
            found = True
            when = cond.last_transition_time if cond.status == value and cond.last_transition_time else now
            cond = Condition(type=type_, status=value, reason=reason, message=message, last_transition_time=when)
        out.append(cond)
    if not found:
        out.append(Condition(type=type_, status=value, reason=reason, message=message, last_transition_time=now))
    return out


def condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new` (removed keys → null, nested maps recursed)."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            sub = merge_patch(before, value)
            if sub:
                patch[key] = sub
        elif value != before or key not in old:
            patch[key] = value
    return patch


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether `obj` has an ownerReference to the object with `uid`."""
    return any(r.get("uid") == uid for r in (obj.get("metadata") or {}).get("ownerReferences") or [])


def resource_version(body: Mapping[str, Any] | None) -> int:
    try:
        return int((body or {}).get("metadata", {}).get("resourceVersion", 0))
    except (TypeError, ValueError):
        return 0


def newer(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether a cache should take `new` over `old`: keep what we wrote ourselves until the watch catches up
    (resourceVersions are etcd revisions; another uid is another object)."""
    if old is None or old["metadata"].get("uid") != new["metadata"].get("uid"):
        return True
    return resource_version(new) >= resource_version(old) or not resource_version(new)
