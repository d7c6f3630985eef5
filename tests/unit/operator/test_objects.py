"""Pure helpers over Kubernetes objects: conditions, merge patches (operator/objects.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tfscore.api.common import Condition
from tfscore.operator.objects import merge_patch, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_condition_transition_time_moves_only_on_flip():
    conds = set_condition([], "Running", True, "DriverRunning", "m", T0)
    assert conds == [Condition(type="Running", status="True", reason="DriverRunning", message="m",
                               last_transition_time=T0)]
    same = set_condition(conds, "Running", True, "DriverRunning", "m2", T0 + timedelta(seconds=5))
    assert same[0].last_transition_time == T0 and same[0].message == "m2"
    flipped = set_condition(same, "Running", False, "Suspended", "s", T0 + timedelta(seconds=9))
    assert flipped[0].last_transition_time == T0 + timedelta(seconds=9) and flipped[0].status == "False"
    two = set_condition(flipped, "Succeeded", True, "Completed", "", T0)
    assert [c.type for c in two] == ["Running", "Succeeded"]


def test_merge_patch():
    old = {"phase": "Running", "progress": {"rowsScored": 1, "percent": 5}, "message": "x", "nextAttemptTime": "t"}
    new = {"phase": "Running", "progress": {"rowsScored": 9, "percent": 5}, "message": "x"}
    assert merge_patch(old, new) == {"nextAttemptTime": None, "progress": {"rowsScored": 9}}
    assert merge_patch(new, new) == {}
    assert merge_patch({}, {"a": {"b": 1}}) == {"a": {"b": 1}}
