"""A schedule's run as the API server reports it → RunView → its bounded record (operator/scoringschedule/runs.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from tfscore.operator.scoringschedule.runs import describe_drift, observe_run, record

T = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def body(status=None, uid="uid-s", **meta):
    return {"metadata": {"name": "s-1", "uid": "uid-r", "annotations": {"tfscore.io/scheduled-time":
                                                                        "2026-11-24T10:00:00Z"},
                         "ownerReferences": [{"uid": uid, "kind": "ScoringSchedule"}], **meta},
            "status": status or {}}


def test_only_the_schedules_own_annotated_runs_are_seen():
    assert observe_run(body(), "uid-s").scheduled_time == T
    assert observe_run(body(uid="other"), "uid-s") is None
    assert observe_run({"metadata": {"name": "x", "ownerReferences": [{"uid": "uid-s"}]}}, "uid-s") is None
    fresh = observe_run(body(), "uid-s")
    assert (fresh.phase, fresh.active, fresh.finished) == ("Pending", True, False)
    going = observe_run(body(deletionTimestamp="2026-11-24T10:01:00Z"), "uid-s")
    assert going.deleting and not going.active


def test_a_finished_run_becomes_a_bounded_record():
    columns = {f"c{i}": {"count": 5, "nulls": 1, "quantiles": {"p50": 0.5}, "mean": 0.4} for i in range(12)}
    drift = {"c0": {"metric": "psi", "value": 0.3, "reference": "r", "threshold": 0.25, "exceeded": True}}
    result = {"rowsIn": 5, "rowsOut": 5, "seconds": 1.0, "rowsPerSecond": 5.0, "outputUri": "s3a://o/",
              "statistics": {"columns": columns, "drift": drift},
              "incremental": {"partitionKey": "dt", "partitions": [str(i) for i in range(30)], "watermark": "29"}}
    view = observe_run(body({"phase": "Succeeded", "completionTime": "2026-11-24T10:05:00Z", "result": result}),
                       "uid-s")
    rec = record(view)
    assert (rec.phase, rec.rows, rec.output_uri, rec.watermark) == ("Succeeded", 5, "s3a://o/", "29")
    assert len(rec.partitions) == 20 and len(rec.statistics) == 8 and rec.statistics["c0"].p50 == 0.5
    assert rec.drift["c0"].exceeded and describe_drift(rec) == ("run s-1: prediction drift beyond the threshold: "
                                                                "c0 psi 0.3 > 0.25")


def test_a_failed_run_carries_its_reason():
    status = {"phase": "Failed", "conditions": [{"type": "Failed", "status": "True", "reason": "DriftExceeded"}]}
    rec = record(observe_run(body(status), "uid-s"))
    assert (rec.phase, rec.reason, rec.rows) == ("Failed", "DriftExceeded", None)
    assert "drift beyond the threshold" in describe_drift(rec)
