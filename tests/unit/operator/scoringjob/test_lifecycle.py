"""The Job-like lifecycle as a pure function: status + observations + now → Decision."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tfscore.api.scoringjob import ScoringJobSpec, ScoringJobStatus
from tfscore.operator.config import OperatorConfig
from tfscore.operator.scoringjob.lifecycle import Decision, Observed, decide

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BACKOFF = OperatorConfig(backoff_base_seconds=10, backoff_max_seconds=60).backoff
RESULT = {"rowsIn": 10, "rowsOut": 10, "seconds": 2.0, "rowsPerSecond": 5.0, "outputUri": "/o",
          "model": {"uri": "/m", "version": "3", "fingerprint": "f"}}


def spec(**kw) -> ScoringJobSpec:
    return ScoringJobSpec.model_validate({"model": {"uri": "/m"}, "input": {"uri": "/i"}, "output": {"uri": "/o"},
                                          **kw})


def pod(phase="Pending", state=None, created=T0, conditions=None, **meta):
    status = {"phase": phase}
    if state:
        status["containerStatuses"] = [{"name": "driver", "state": state}]
    if conditions:
        status["conditions"] = conditions
    return {"metadata": {"name": "j", "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"), **meta},
            "status": status}


def running():
    return pod("Running", {"running": {}})


def failed(code=2, message="boom"):
    return pod("Failed", {"terminated": {"exitCode": code, "reason": "Error", "message": message}})


def succeeded(result=RESULT):
    return pod("Succeeded", {"terminated": {"exitCode": 0, "reason": "Completed", "message": json.dumps(result)}})


def obs(s=None, pods=None, generation=1, **kw) -> Observed:
    return Observed(name="j", generation=generation, spec=s if s is not None else spec(), pods=pods or {}, **kw)


def run(status: ScoringJobStatus, o: Observed, now=T0) -> Decision:
    return decide(status, o, now, BACKOFF)


def reasons(d: Decision) -> list[str]:
    return [e.reason for e in d.events]


def started(now=T0, **spec_kw) -> ScoringJobStatus:
    return run(ScoringJobStatus(), obs(spec(**spec_kw)), now).status


def test_new_job_starts_attempt_one():
    d = run(ScoringJobStatus(), obs())
    assert d.create_attempt == 1 and d.transitions == ["started"] and reasons(d) == ["Started"]
    st = d.status
    assert (st.phase, st.attempts, st.driver_pod, st.start_time, st.observed_generation) == (
        "Pending", 1, "j-driver-1", T0, 1)
    assert d.requeue_after == 600, "wake up at the startup timeout"


def test_invalid_spec_fails_without_creating_anything_and_an_edit_is_judged_afresh():
    d = run(ScoringJobStatus(), obs(s=None, invalid="spec.output.mode: Input should be 'errorIfExists'"))
    assert d.create_attempt is None and d.status.phase == "Failed"
    failed_cond = next(c for c in d.status.conditions if c.type == "Failed")
    assert failed_cond.reason == "Invalid" and "spec.output.mode" in failed_cond.message
    assert d.events[0].type == "Warning" and "spec.output.mode" in d.status.message
    again = run(d.status, obs(s=None, invalid="spec.output.mode: …"))
    assert again.events == [] and again.create_attempt is None, "same generation: nothing new"
    fixed = run(d.status, obs(generation=2))
    assert fixed.create_attempt == 1 and fixed.status.phase == "Pending"


def test_running_then_progress():
    st = started()
    d = run(st, obs(pods={1: running()}), T0 + timedelta(seconds=3))
    assert d.status.phase == "Running" and reasons(d) == ["Running"]
    ann = {"tfscore.io/progress": json.dumps({"rowsScored": 50, "tasksDone": 1, "tasksTotal": 4, "percent": 25})}
    d2 = run(d.status, obs(pods={1: {**running(), "metadata": {"name": "j", "annotations": ann}}}))
    assert d2.events == [] and d2.status.progress.rows_scored == 50 and d2.status.progress.percent == 25


def test_success_records_result_model_and_ttl():
    st = started(ttlSecondsAfterFinished=60)
    o = obs(spec(ttlSecondsAfterFinished=60), pods={1: succeeded()})
    d = run(st, o, T0 + timedelta(seconds=30))
    s = d.status
    assert s.phase == "Succeeded" and s.completion_time == T0 + timedelta(seconds=30)
    assert s.result.rows_out == 10 and s.model.version == "3" and s.progress.percent == 100
    assert d.transitions == ["succeeded"] and reasons(d) == ["Completed"]
    assert d.requeue_after == 60 and not d.delete_job
    later = run(s, o, T0 + timedelta(seconds=91))
    assert later.delete_job and reasons(later) == ["TTLExpired"]


def test_row_count_mismatch_fails():
    d = run(started(), obs(pods={1: succeeded({**RESULT, "rowsOut": 9})}))
    assert d.status.phase == "Failed" and reasons(d) == ["RowCountMismatch"]


def test_failed_attempt_backs_off_exponentially_then_fails_with_the_pods_reason():
    s = spec(backoffLimit=2)
    st, now = started(backoffLimit=2), T0
    delays = []
    for attempt in (1, 2):
        now += timedelta(seconds=5)
        d = run(st, obs(s, pods={attempt: failed()}), now)
        assert reasons(d) == ["AttemptFailed"] and d.create_attempt is None
        assert d.status.failed == attempt and d.status.phase == "Pending"
        delays.append(d.requeue_after)
        again = run(d.status, obs(s, pods={attempt: failed()}), now + timedelta(seconds=1))
        assert again.status.failed == attempt and again.events == [], "a failure is counted once"
        now = d.status.next_attempt_time
        d = run(d.status, obs(s, pods={attempt: failed()}), now)
        assert d.create_attempt == attempt + 1 and d.status.next_attempt_time is None
        st = d.status
    assert delays == [10, 20]
    d = run(st, obs(s, pods={3: failed(message="input column 'f1' missing")}), now + timedelta(seconds=5))
    assert d.status.phase == "Failed" and d.transitions == ["failed"]
    cond = next(c for c in d.status.conditions if c.type == "Failed")
    assert cond.reason == "DriverFailed" and "input column 'f1' missing" in cond.message
    assert "backoffLimit 2" in cond.message


def test_backoff_is_capped():
    assert [BACKOFF(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_startup_timeout_fails_the_attempt_with_the_pods_reason_and_removes_the_pod():
    s = spec(backoffLimit=0, startupTimeoutSeconds=30)
    st = started(backoffLimit=0, startupTimeoutSeconds=30)
    stuck = pod(state={"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}})
    early = run(st, obs(s, pods={1: stuck}), T0 + timedelta(seconds=10))
    assert early.status.phase == "Pending" and "ImagePullBackOff" in early.status.message
    assert early.requeue_after == 20
    d = run(early.status, obs(s, pods={1: stuck}), T0 + timedelta(seconds=30))
    assert d.status.phase == "Failed" and d.delete_pods == [1]
    cond = next(c for c in d.status.conditions if c.type == "Failed")
    assert cond.reason == "ImagePullBackOff" and "startupTimeoutSeconds (30s)" in cond.message
    unschedulable = pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": "0/1 nodes are available"}])
    d = run(st, obs(s, pods={1: unschedulable}), T0 + timedelta(seconds=31))
    assert next(c for c in d.status.conditions if c.type == "Failed").reason == "Unschedulable"


def test_an_image_that_can_never_be_pulled_fails_at_once():
    s = spec(backoffLimit=0)
    d = run(started(backoffLimit=0), obs(s, pods={1: pod(state={"waiting": {"reason": "InvalidImageName"}})}))
    assert d.status.phase == "Failed" and d.delete_pods == [1]


def test_deadline_fails_and_removes_pods():
    s = spec(activeDeadlineSeconds=100)
    st = started(activeDeadlineSeconds=100)
    d = run(st, obs(s, pods={1: running()}), T0 + timedelta(seconds=50))
    assert d.requeue_after == 50
    d = run(d.status, obs(s, pods={1: running()}), T0 + timedelta(seconds=100))
    assert d.status.phase == "Failed" and d.delete_pods == [1] and reasons(d) == ["DeadlineExceeded"]


def test_success_beats_deadline_and_suspend():
    s = spec(activeDeadlineSeconds=10)
    d = run(started(activeDeadlineSeconds=10), obs(s, pods={1: succeeded()}, suspend=True), T0 + timedelta(hours=1))
    assert d.status.phase == "Succeeded"


def test_suspend_and_resume():
    st = run(started(), obs(pods={1: running()})).status
    d = run(st, obs(pods={1: running()}, suspend=True), T0 + timedelta(seconds=5))
    assert d.delete_pods == [1] and d.status.phase == "Suspended" and reasons(d) == ["Suspended"]
    assert d.status.failed == 0
    quiet = run(d.status, obs(pods={}, suspend=True), T0 + timedelta(seconds=6))
    assert quiet.events == [] and quiet.delete_pods == [] and quiet.create_attempt is None
    r = run(d.status, obs(pods={}), T0 + timedelta(seconds=60))
    assert r.create_attempt == 2 and reasons(r) == ["Resumed", "Started"]
    assert r.status.start_time == T0 + timedelta(seconds=60), "the deadline clock restarts on resume"
    assert r.status.failed == 0 and r.transitions == []


def test_created_suspended_starts_nothing_until_resumed():
    d = run(ScoringJobStatus(), obs(suspend=True))
    assert d.create_attempt is None and d.status.phase == "Suspended" and d.status.attempts == 0
    r = run(d.status, obs())
    assert r.create_attempt == 1 and r.transitions == ["started"]


def test_spec_edits_after_start_are_ignored_with_one_event_per_generation():
    st = run(started(), obs(pods={1: running()})).status
    d = run(st, obs(pods={1: running()}, spec_changed=True, generation=2))
    assert reasons(d) == ["SpecChangeIgnored"] and d.status.observed_generation == 2
    assert d.create_attempt is None and d.delete_pods == []
    assert run(d.status, obs(pods={1: running()}, spec_changed=True, generation=2)).events == []


def test_a_newer_pod_found_in_the_cluster_is_adopted():
    st = started()  # attempts=1, but attempt 2's pod exists (created just before a crash)
    d = run(st, obs(pods={1: failed(), 2: running()}))
    assert d.status.attempts == 2 and d.status.driver_pod == "j-driver-2" and d.create_attempt is None
    assert d.status.phase == "Running"


def test_an_older_attempt_still_alive_is_stopped():
    st = run(started(), obs(pods={1: running()})).status
    st.attempts = 2
    d = run(st, obs(pods={1: running(), 2: running()}))
    assert d.delete_pods == [1]


def test_a_deleted_driver_pod_is_a_failed_attempt():
    st = run(started(), obs(pods={1: running()})).status
    d = run(st, obs(pods={1: None}))
    assert d.status.failed == 1 and "DriverPodDeleted" in d.status.message


def test_decide_is_idempotent():
    for status, o in [(ScoringJobStatus(), obs()), (started(), obs(pods={1: running()})),
                      (started(), obs(pods={1: succeeded()}))]:
        first = run(status, o)
        second = run(first.status, obs(pods={**o.pods, **({1: running()} if first.create_attempt else {})}))
        if first.create_attempt:
            continue
        assert second.events == [] and second.create_attempt is None and second.status == first.status


def test_a_refused_create_retries_until_the_startup_timeout_then_fails_with_the_api_servers_message():
    from tfscore.operator.scoringjob.lifecycle import create_rejected

    s = spec(startupTimeoutSeconds=60)
    first = create_rejected(ScoringJobStatus(), s, "cannot create Pod j-driver-1: forbidden", T0)
    assert first.status.start_time == T0 and first.status.phase == "Pending"
    assert first.requeue_after == 15 and [e.reason for e in first.events] == ["CreateFailed"]
    later = create_rejected(first.status, s, "cannot create Pod j-driver-1: forbidden", T0 + timedelta(seconds=50))
    assert later.requeue_after == 10 and later.events == [], "the clock runs from the persisted start time"
    done = create_rejected(later.status, s, "cannot create Pod j-driver-1: forbidden", T0 + timedelta(seconds=60))
    assert done.status.phase == "Failed" and done.transitions == ["failed"]
    cond = {c.type: c for c in done.status.conditions}["Failed"]
    assert cond.reason == "CreateRejected" and cond.message.endswith("cannot create Pod j-driver-1: forbidden")
    assert "startupTimeoutSeconds (60s)" in cond.message


def test_a_refused_retry_counts_from_its_back_off_time():
    from tfscore.operator.scoringjob.lifecycle import create_rejected

    st = ScoringJobStatus(attempts=1, failed=1, start_time=T0, next_attempt_time=T0 + timedelta(seconds=100))
    d = create_rejected(st, spec(startupTimeoutSeconds=60), "no", T0 + timedelta(seconds=150))
    assert d.status.phase == "Pending" and d.requeue_after == 10


def test_a_tampered_bound_spec_fails_the_started_run_and_stops_its_pods():
    st = ScoringJobStatus(attempts=1, phase="Running", start_time=T0, driver_pod="j-driver-1")
    d = decide(st, Observed(name="j", generation=1, spec=None, invalid="ConfigMap j-spec-1: job.json is not the spec",
                            invalid_reason="SpecTampered", pods={1: running()}), T0, BACKOFF)
    assert d.status.phase == "Failed" and d.delete_pods == [1]
    assert {c.type: c for c in d.status.conditions}["Failed"].reason == "SpecTampered"


def test_drift_exceeded_fails_at_once_without_a_retry():
    s = spec(backoffLimit=5)
    message = json.dumps({"reason": "DriftExceeded", "message": "risk_score psi 0.41 > 0.25; nothing committed"})
    d = run(started(backoffLimit=5), obs(s, pods={1: failed(1, message)}), T0 + timedelta(seconds=5))
    assert d.status.phase == "Failed" and d.create_attempt is None and d.status.failed == 1
    cond = next(c for c in d.status.conditions if c.type == "Failed")
    assert cond.reason == "DriftExceeded" and "psi 0.41 > 0.25" in cond.message and "not retried" in cond.message
    assert d.transitions == ["failed"] and reasons(d) == ["DriftExceeded"]


def test_drift_beyond_the_threshold_on_a_succeeded_run_warns():
    drift = {"risk": {"metric": "psi", "value": 0.4, "reference": "/ref", "threshold": 0.25, "exceeded": True}}
    d = run(started(), obs(pods={1: succeeded({**RESULT, "statistics": {"drift": drift}})}))
    assert d.status.phase == "Succeeded" and reasons(d) == ["Completed", "DriftExceeded"]
    assert next(e for e in d.events if e.reason == "DriftExceeded").type == "Warning"
    cond = next(c for c in d.status.conditions if c.type == "DriftExceeded")
    assert cond.status == "True" and "risk psi 0.4 > 0.25" in cond.message
    calm = {"risk": {**drift["risk"], "value": 0.01, "exceeded": False}}
    ok = run(started(), obs(pods={1: succeeded({**RESULT, "statistics": {"drift": calm}})}))
    assert reasons(ok) == ["Completed"]
    assert next(c for c in ok.status.conditions if c.type == "DriftExceeded").status == "False"
    plain = run(started(), obs(pods={1: succeeded()}))
    assert all(c.type != "DriftExceeded" for c in plain.status.conditions)
