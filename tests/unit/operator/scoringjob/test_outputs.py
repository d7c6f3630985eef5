"""Which active job holds an output (operator/scoringjob/outputs.py), and the lifecycle's OutputInUse wait."""

from __future__ import annotations

from datetime import timedelta

from tfscore.api.scoringjob import ScoringJobStatus
from tfscore.operator.scoringjob import outputs

from .test_lifecycle import T0, obs, run


def job(name, out, born="2026-01-01T00:00:00Z", ns="a", status=None, quarantine=None, suspend=False):
    spec = {"output": {"uri": out}, **({"quarantineUri": quarantine} if quarantine else {}),
            **({"suspend": True} if suspend else {})}
    return {"metadata": {"name": name, "namespace": ns, "uid": f"u-{ns}-{name}", "creationTimestamp": born},
            "spec": spec, "status": status or {}}


def test_the_oldest_active_writer_of_an_overlapping_output_holds_it():
    old = job("old", "s3a://lake/scores/", born="2026-01-01T00:00:00Z")
    new = job("new", "s3://lake/./scores/dt=1", born="2026-01-01T00:01:00Z", ns="b")
    assert outputs.holder(new, [old, new]) == "a/old", "s3a vs s3, ./ and a path inside: one place"
    assert outputs.holder(old, [old, new]) is None, "the older job goes first"
    started = job("late", "s3://lake/scores", born="2026-01-01T00:05:00Z", status={"attempts": 1, "phase": "Running"})
    assert outputs.holder(old, [old, started]) == "a/late", "a job that has started holds it, however young"
    assert outputs.holder(started, [old, started]) is None, "and is never asked to wait"


def test_finished_suspended_and_unrelated_jobs_hold_nothing():
    new = job("new", "/data/out/x", born="2026-01-01T00:01:00Z")
    for other in (job("done", "/data/out/x", status={"phase": "Succeeded", "attempts": 1}),
                  job("failed", "/data/out", status={"phase": "Failed", "attempts": 2}),
                  job("parked", "/data/out/x", suspend=True),
                  job("elsewhere", "/data/out/xy"),
                  job("s3", "s3://data/out/x")):
        assert outputs.holder(new, [other, new]) is None, other["metadata"]["name"]
    assert outputs.holder(new, [job("q", "/tmp/q", quarantine="/data/out/x/bad"), new]) == "a/q", "quarantine too"


def test_a_job_waits_with_output_in_use_then_starts():
    waiting = run(ScoringJobStatus(), obs(output_holder="a/old"))
    st = waiting.status
    assert waiting.create_attempt is None and st.phase == "Pending" and st.attempts == 0
    cond = next(c for c in st.conditions if c.type == "OutputInUse")
    assert cond.status == "True" and "active ScoringJob a/old" in cond.message and waiting.requeue_after == 5.0
    assert [e.reason for e in waiting.events] == ["OutputInUse"]
    again = run(st, obs(output_holder="a/old"), T0 + timedelta(seconds=5))
    assert again.events == [] and again.create_attempt is None, "one event, not one per look"
    go = run(again.status, obs(), T0 + timedelta(seconds=10))
    assert go.create_attempt == 1
    assert next(c for c in go.status.conditions if c.type == "OutputInUse").status == "False"
