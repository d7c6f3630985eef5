"""`tfscore schedule next|render` and `tfscore run SCHEDULE --at` argument handling, in-process (schedulecli.py); the
runtime tier runs `tfscore run schedule.yaml --at` for real."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from harness.common import ROOT
from tfscore.cli import app

EXAMPLE = ROOT / "examples" / "schedule.yaml"
runner = CliRunner()


def test_next_fire_times_in_the_schedules_zone_across_a_dst_change():
    out = runner.invoke(app, ["schedule", "next", str(EXAMPLE), "-n", "3", "--after", "2026-10-25T00:00:00Z"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() == [
        "2026-10-25T02:05:00+02:00  CEST   2026-10-25T00:05:00Z",
        "2026-10-25T02:05:00+01:00  CET    2026-10-25T01:05:00Z",  # the repeated hour fires twice, as CronJob
        "2026-10-25T03:05:00+01:00  CET    2026-10-25T02:05:00Z"]


def test_render_prints_the_runs_scoringjob(tmp_path):
    out = runner.invoke(app, ["schedule", "render", str(EXAMPLE), "--at", "2026-11-24T10:05:00Z"])
    assert out.exit_code == 0, out.output
    job = yaml.safe_load(out.stdout)
    assert job["kind"] == "ScoringJob" and job["metadata"]["name"] == "risk-hourly-29925245"
    assert job["spec"]["output"]["uri"] == "s3://lake/scores/dt=2026-11-24/hour=10/"
    assert job["spec"]["input"]["incremental"] == {"partitionKey": "hour", "until": "2026-11-24-10"}
    off = runner.invoke(app, ["schedule", "render", str(EXAMPLE), "--at", "2026-11-24T10:07:00+00:00"])
    assert off.exit_code == 0 and "is not a fire time of schedule '5 * * * *'" in off.stderr


def test_bad_input_is_one_sentence_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["timeZone"] = "Mars/Olympus"
    bad.write_text(yaml.safe_dump(doc))
    cases = [
        (["schedule", "next", str(bad)], "spec.timeZone: unknown time zone Mars/Olympus"),
        (["schedule", "render", str(EXAMPLE), "--at", "tomorrow"], "--at: 'tomorrow' is not an ISO 8601 time"),
        (["schedule", "next", str(EXAMPLE), "--after", "2026-11-24T10:00"], "--after: '2026-11-24T10:00' has no time "
                                                                            "zone"),
        (["run", str(EXAMPLE)], "--at: " + str(EXAMPLE) + " is a ScoringSchedule: give the scheduled time"),
        (["run", str(ROOT / "examples" / "demo-job.yaml"), "--at", "2026-11-24T10:00:00Z"], "is a ScoringJob; --at"),
        (["schedule", "next", str(ROOT / "examples" / "demo-job.yaml")], "expected apiVersion tfscore.io/v1alpha1 and "
                                                                         "kind ScoringSchedule"),
    ]
    for args, needle in cases:
        out = runner.invoke(app, args)
        assert out.exit_code == 2, (args, out.output)
        assert needle in out.stderr and "Traceback" not in out.output, (args, out.stderr)
