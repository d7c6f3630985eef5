"""A driver pod as the API server reports it → what it means for the attempt (operator/scoringjob/driver_pod.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tfscore.api import contract
from tfscore.operator.scoringjob.driver_pod import cause_line, observe_pod

T0 = datetime(2026, 1, 1, tzinfo=UTC)


RESULT = {"rowsIn": 10, "rowsOut": 9, "rowsQuarantined": 1, "seconds": 2.0, "rowsPerSecond": 5.0,
          "outputUri": "s3a://out/", "model": {"uri": "s3a://m/", "version": "3", "fingerprint": "abc"}}


def pod(phase="Pending", state=None, conditions=None, reason=None, message=None, annotations=None):
    status = {"phase": phase}
    if state is not None:
        status["containerStatuses"] = [{"name": "driver", "state": state}]
    if conditions is not None:
        status["conditions"] = conditions
    if reason:
        status["reason"], status["message"] = reason, message
    return {"metadata": {"name": "j-driver-1", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": annotations or {}}, "status": status}


def terminated(code, reason="Error", message=""):
    return {"terminated": {"exitCode": code, "reason": reason, "message": message}}


TABLE = [
    # (case, pod, state, reason, message contains, fatal)
    ("deleted", None, "missing", "DriverPodDeleted", "deleted", False),
    ("just created", pod(), "pending", "PodPending", "scheduled", False),
    ("unschedulable", pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                       "message": "0/3 nodes are available: 3 Insufficient cpu."}]),
     "pending", "Unschedulable", "Insufficient cpu", False),
    ("scheduled, creating", pod(conditions=[{"type": "PodScheduled", "status": "True"}],
                                state={"waiting": {"reason": "ContainerCreating"}}),
     "pending", "ContainerCreating", "", False),
    ("image pull back-off", pod(state={"waiting": {"reason": "ImagePullBackOff",
                                                   "message": "Back-off pulling image \"x\""}}),
     "pending", "ImagePullBackOff", "Back-off pulling", False),
    ("image pull error", pod(state={"waiting": {"reason": "ErrImagePull", "message": "not found"}}),
     "pending", "ErrImagePull", "not found", False),
    ("invalid image name", pod(state={"waiting": {"reason": "InvalidImageName", "message": "bad ref"}}),
     "pending", "InvalidImageName", "bad ref", True),
    ("missing secret", pod(state={"waiting": {"reason": "CreateContainerConfigError",
                                              "message": "secret \"s3\" not found"}}),
     "pending", "CreateContainerConfigError", "secret", False),
    ("running", pod("Running", {"running": {"startedAt": "2026-01-01T00:00:05Z"}}), "running", "Running", "", False),
    ("succeeded", pod("Succeeded", terminated(0, "Completed", json.dumps(RESULT))), "succeeded", "Completed", "",
     False),
    ("exited 0, phase lagging", pod("Running", terminated(0, "Completed", json.dumps(RESULT))), "succeeded",
     "Completed", "", False),
    ("failed with cause", pod("Failed", terminated(3, "Error", "input column 'f1' missing in s3a://in/part-0")),
     "failed", "DriverFailed", "code 3: input column 'f1' missing", False),
    ("failed, log tail", pod("Failed", terminated(1, "Error", "Traceback:\n  File x\nValueError: bad batch\n")),
     "failed", "DriverFailed", "code 1: ValueError: bad batch", False),
    ("oom", pod("Failed", terminated(137, "OOMKilled")), "failed", "OOMKilled", "out of memory", False),
    ("evicted", pod("Failed", reason="Evicted", message="The node was low on resource: memory."), "failed",
     "Evicted", "low on resource", False),
    ("pod deadline", pod("Failed", reason="DeadlineExceeded", message="Pod was active on the node longer than"),
     "failed", "DeadlineExceeded", "longer than", False),
    ("cannot run", pod("Failed", terminated(128, "ContainerCannotRun", "exec: tfscore: not found")), "failed",
     "ContainerCannotRun", "not found", False),
]


@pytest.mark.parametrize("case,p,state,reason,message,fatal", TABLE, ids=[row[0] for row in TABLE])
def test_pod_mapping_table(case, p, state, reason, message, fatal):
    view = observe_pod(p)
    assert (view.state, view.reason, view.fatal) == (state, reason, fatal)
    assert message in view.message
    if p is not None:
        assert view.created == T0


def test_success_carries_the_result():
    view = observe_pod(pod("Succeeded", terminated(0, "Completed", json.dumps(RESULT))))
    assert view.result is not None and view.result.rows_out == 9 and view.result.model.fingerprint == "abc"
    assert observe_pod(pod("Succeeded", terminated(0, "Completed", "not json"))).result is None


def test_progress_annotation():
    ann = {contract.PROGRESS_ANNOTATION: json.dumps({"rowsScored": 1200, "tasksDone": 3, "tasksTotal": 8,
                                                   "percent": 37})}
    view = observe_pod(pod("Running", {"running": {}}, annotations=ann))
    assert view.progress is not None and (view.progress.rows_scored, view.progress.percent) == (1200, 37)
    assert observe_pod(pod("Running", {"running": {}}, annotations={contract.PROGRESS_ANNOTATION: "{"})).progress is None
    clamped = {contract.PROGRESS_ANNOTATION: json.dumps({"percent": 150})}
    assert observe_pod(pod("Running", {"running": {}}, annotations=clamped)).progress.percent == 100


def test_cause_line_is_the_last_line_and_bounded():
    assert cause_line("a\n\nb\n") == "b"
    assert cause_line("") == ""
    assert len(cause_line("x" * 5000)) == 1024


def test_the_runtimes_failure_json_gives_reason_and_message():
    failure = json.dumps({"reason": "DriftExceeded", "message": "risk_score psi 0.41 > 0.25 against s3a://out/9/"})
    view = observe_pod(pod("Failed", terminated(1, message=failure)))
    assert (view.state, view.reason, view.permanent) == ("failed", "DriftExceeded", True)
    assert view.message == "risk_score psi 0.41 > 0.25 against s3a://out/9/"
    other = observe_pod(pod("Failed", terminated(1, message=json.dumps({"reason": "RunFailed", "message": "boom"}))))
    assert (other.reason, other.message, other.permanent) == ("RunFailed", "boom", False)
    plain = observe_pod(pod("Failed", terminated(1, message="Traceback …\nValueError: column f1 missing")))
    assert (plain.reason, plain.permanent) == ("DriverFailed", False) and plain.message.endswith("column f1 missing")
    braces = observe_pod(pod("Failed", terminated(1, message='{"not": "a failure"}')))
    assert braces.reason == "DriverFailed" and '{"not": "a failure"}' in braces.message
