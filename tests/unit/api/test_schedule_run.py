"""One run of a schedule: its deterministic DNS-safe name and its rendered ScoringJob (api/schedule_run.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tfscore.api.manifest import parse
from tfscore.api.schedule_run import RUN_NAME_MAX, RenderError, render_run, run_name
from tfscore.api.scoringschedule import ScoringSchedule

T = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def schedule(name="risk", **template) -> ScoringSchedule:
    spec = {"model": {"uri": "s3a://m/"}, "input": {"uri": "s3a://in/dt=${scheduledTime:%Y-%m-%d}/"},
            "output": {"uri": "s3a://out/${scheduleName}/${scheduledTime:%Y%m%dT%H}/"}, **template}
    return parse({"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringSchedule", "metadata": {"name": name},
                  "spec": {"schedule": "0 * * * *", "timeZone": "Europe/Berlin", "concurrencyPolicy": "Forbid",
                           "jobTemplate": {"metadata": {"labels": {"team": "risk"}}, "spec": spec}}},
                 "s", ScoringSchedule)


def test_names_are_deterministic_dns_labels_with_room_for_the_driver_suffix():
    assert run_name("risk", T) == f"risk-{int(T.timestamp()) // 60}" == "risk-29925240"
    long = "a" * 63
    name = run_name(long, T)
    assert len(name) == RUN_NAME_MAX == 52 and name.endswith("-29925240") and name == run_name(long, T)
    assert run_name("a" * 62 + "b", T) != name, "a hash of the schedule name keeps long names apart"
    assert len(f"{name}-driver-101") <= 63


def test_render_uses_the_schedules_zone_and_keeps_what_the_user_left_out():
    job = render_run(schedule(), T)
    assert job.metadata.name == "risk-29925240"
    assert job.spec.input.uri == "s3a://in/dt=2026-11-24/" and job.spec.output.uri == "s3a://out/risk/20261124T11/"
    meta = job.metadata.model_dump()
    assert meta["labels"] == {"team": "risk", "tfscore.io/schedule": "risk"}
    assert meta["annotations"] == {"tfscore.io/scheduled-time": "2026-11-24T10:00:00Z"}
    assert job.spec.drift is None and job.spec.input.incremental is None
    assert "batchSize" not in job.spec.model_dump(by_alias=True, exclude_unset=True)


def test_watermark_and_drift_reference():
    s = parse({**schedule().model_dump(by_alias=True, exclude_none=True, mode="json"), "spec": {
        **schedule().spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        "driftPolicy": {"metric": "psi", "action": "warn"},
        "jobTemplate": {"spec": {"model": {"uri": "s3a://m/"}, "output": {"uri": "s3a://o/"}, "input": {
            "uri": "s3a://in/", "incremental": {"partitionKey": "dt", "after": "2026-01-01",
                                                "until": "${scheduledTime-1d:%Y-%m-%d}"}}}}}},
        "s", ScoringSchedule)
    first = render_run(s, T)
    assert first.spec.input.incremental.after == "2026-01-01" and first.spec.input.incremental.until == "2026-11-23"
    assert first.spec.drift is None
    later = render_run(s, T, watermark="2026-11-22", reference_uri="s3a://o/prev/")
    assert later.spec.input.incremental.after == "2026-11-22"
    assert (later.spec.drift.reference_uri, later.spec.drift.metric, later.spec.drift.action) == (
        "s3a://o/prev/", "psi", "warn")


def test_a_render_that_fails_names_the_field():
    s = schedule(output={"uri": "s3a://o/${scheduledTime-999999w:%Y}/"})
    with pytest.raises(RenderError, match=r"spec.jobTemplate.spec.output.uri: .* shifts the time out of the years"):
        render_run(s, T)
    empty = schedule(input={"uri": "s3a://in/", "where": "${scheduledTime:}"})
    with pytest.raises(RenderError, match="spec.jobTemplate.spec.input.where"):
        render_run(empty, T)
