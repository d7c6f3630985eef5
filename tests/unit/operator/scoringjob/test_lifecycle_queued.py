"""lifecycle.decide for a queued ScoringJob (obs.queue): Queued until admitted, an eviction stops the attempt without
counting it, readmission starts the next attempt."""

from __future__ import annotations

from datetime import timedelta

from tfscore.api.scoringjob import ScoringJobStatus
from tfscore.operator.objects import condition
from tfscore.operator.scoringjob.queueing import QueueView
from unit.operator.scoringjob.test_lifecycle import T0, failed, obs, reasons, run, running, spec, succeeded

PENDING = QueueView("team-a", "pending", "Pending", "insufficient unused quota for cpu in flavor f, 2 more needed")
ADMITTED = QueueView("team-a", "admitted", "Admitted", "admitted by ClusterQueue cq", "cq", reserved=True)
EVICTED = QueueView("team-a", "evicted", "Preempted", "Preempted to accommodate a workload", reserved=True)


def queued(now=T0) -> ScoringJobStatus:
    return run(ScoringJobStatus(), obs(queue=PENDING), now).status


def test_not_admitted_means_queued_with_the_queues_reason_and_nothing_started():
    d = run(ScoringJobStatus(), obs(queue=PENDING))
    st = d.status
    assert st.phase == "Queued" and d.create_attempt is None and st.attempts == 0
    assert st.message == "queued in LocalQueue team-a: insufficient unused quota for cpu in flavor f, 2 more needed"
    q = condition(st.conditions, "Queued")
    assert (q.status, q.reason) == ("True", "Pending")
    assert reasons(d) == ["Queued"]
    again = run(st, obs(queue=PENDING), T0 + timedelta(seconds=5))
    assert again.events == [] and again.status.to_wire() == st.to_wire(), "same reason: no new event, no write"
    other = run(st, obs(queue=QueueView("team-a", "pending", "Inadmissible", "LocalQueue team-a doesn't exist")))
    assert reasons(other) == ["Queued"] and "doesn't exist" in other.status.message


def test_admission_starts_the_first_attempt():
    d = run(queued(), obs(queue=ADMITTED), T0 + timedelta(seconds=30))
    st = d.status
    assert d.create_attempt == 1 and st.attempts == 1 and st.phase == "Pending"
    q = condition(st.conditions, "Queued")
    assert (q.status, q.reason, q.message) == ("False", "Admitted", "admitted by ClusterQueue cq")
    assert q.last_transition_time == T0 + timedelta(seconds=30)
    assert st.start_time == T0 + timedelta(seconds=30), "activeDeadlineSeconds counts from the admitted start"
    assert reasons(d) == ["Admitted", "Started"] and d.transitions == ["admitted", "started"]


def test_eviction_stops_the_attempt_without_counting_it_and_readmission_starts_the_next():
    st = run(queued(), obs(queue=ADMITTED)).status
    st = run(st, obs(pods={1: running()}, queue=ADMITTED)).status
    assert st.phase == "Running"
    d = run(st, obs(pods={1: running()}, queue=EVICTED), T0 + timedelta(seconds=60))
    assert d.delete_pods == [1] and d.transitions == ["evicted"]
    assert d.status.phase == "Queued" and d.status.failed == 0 and d.status.attempts == 1
    assert d.status.message.startswith("attempt 1 stopped: its Workload is no longer admitted (Preempted:")
    assert condition(d.status.conditions, "Running").reason == "Evicted"
    assert condition(d.status.conditions, "Queued").reason == "Preempted"
    assert reasons(d) == ["Evicted"]
    # the pod is being deleted (terminating): nothing more to stop, no second eviction counted
    terminating = {1: {**running(), "metadata": {**running()["metadata"], "deletionTimestamp": "2026-01-01T00:01:00Z"}}}
    d2 = run(d.status, obs(pods=terminating, queue=EVICTED), T0 + timedelta(seconds=61))
    assert d2.delete_pods == [] and d2.transitions == [] and d2.events == []
    # gone, then the SIGTERM'd driver's failure is no failure; readmitted: attempt 2
    d3 = run(d2.status, obs(pods={1: failed(2, "terminated (SIGTERM)")}, queue=PENDING), T0 + timedelta(seconds=62))
    assert d3.status.phase == "Queued" and d3.status.failed == 0 and reasons(d3) == ["Queued"]
    d4 = run(d3.status, obs(pods={}, queue=ADMITTED), T0 + timedelta(seconds=90))
    assert d4.create_attempt == 2 and d4.status.failed == 0 and d4.status.driver_pod == "j-driver-2"


def test_success_wins_over_an_eviction():
    st = run(run(queued(), obs(queue=ADMITTED)).status, obs(pods={1: running()}, queue=ADMITTED)).status
    d = run(st, obs(pods={1: succeeded()}, queue=EVICTED))
    assert d.status.phase == "Succeeded" and d.delete_pods == []


def test_suspend_wins_and_resume_goes_back_to_the_queue():
    d = run(queued(), obs(queue=PENDING, suspend=True))
    assert d.status.phase == "Suspended"
    back = run(d.status, obs(queue=PENDING))
    assert back.status.phase == "Queued" and condition(back.status.conditions, "Suspended").status == "False"
    assert back.create_attempt is None


def test_the_deadline_does_not_run_while_queued():
    st = run(queued(), obs(spec(activeDeadlineSeconds=10), queue=ADMITTED)).status
    st = run(st, obs(spec(activeDeadlineSeconds=10), pods={1: running()}, queue=EVICTED), T0 + timedelta(seconds=5)).status
    d = run(st, obs(spec(activeDeadlineSeconds=10), queue=PENDING), T0 + timedelta(seconds=600))
    assert d.status.phase == "Queued", "an hour in the queue is not an hour of running"


def test_no_longer_queued_starts_directly():
    d = run(queued(), obs(queue=None))
    assert d.create_attempt == 1 and "no longer queued" in condition(d.status.conditions, "Queued").message


def test_an_unqueued_job_is_untouched():
    d = run(ScoringJobStatus(), obs())
    assert d.create_attempt == 1 and condition(d.status.conditions, "Queued") is None
