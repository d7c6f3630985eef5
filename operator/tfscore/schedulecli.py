"""The CLI's ScoringSchedule side: `tfscore run schedule.yaml --at TIME` (one run, rendered by the operator's own
rendering, scored locally) and `tfscore schedule next|render`. Imports nothing from Kubernetes, Spark or TensorFlow."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import typer
import yaml

from tfscore.api.manifest import ManifestError, load_any
from tfscore.api.schedule_run import RenderError, format_time, render_run
from tfscore.api.schedule_time import load_zone, next_after, next_times
from tfscore.api.scoringjob import ScoringJob
from tfscore.api.scoringschedule import KIND, ScoringSchedule

schedule_app = typer.Typer(no_args_is_help=True, help="ScoringSchedule helpers: fire times and rendered runs.")

AT_HELP = "The scheduled time of the run to render, ISO 8601 with a zone (2026-11-24T10:00:00Z)."


def parse_time(text: str, flag: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ManifestError(f"{flag}: {text!r} is not an ISO 8601 time (e.g. 2026-11-24T10:00:00Z)") from None
    if t.tzinfo is None:
        raise ManifestError(f"{flag}: {text!r} has no time zone (add Z or an offset, e.g. 2026-11-24T10:00:00Z)")
    return t.astimezone(UTC)


def render_at(schedule: ScoringSchedule, at: datetime) -> ScoringJob:
    try:
        return render_run(schedule, at)
    except RenderError as exc:
        raise ManifestError(str(exc)) from None


def fire_time_note(schedule: ScoringSchedule, at: datetime) -> str | None:
    """A note when `at` is not one of the schedule's fire times (the run renders anyway)."""
    spec = schedule.spec
    if next_after(spec.schedule, at - timedelta(seconds=1), spec.time_zone) == at:
        return None
    return (f"note: {format_time(at)} is not a fire time of schedule {spec.schedule!r} in {spec.time_zone}; "
            "rendering the run anyway")


def load_job(path: str, at: str | None) -> ScoringJob:
    """The ScoringJob `tfscore run PATH` runs: the file's ScoringJob, or the run of its ScoringSchedule at `at`."""
    doc = load_any(path)
    if isinstance(doc, ScoringJob):
        if at:
            raise ManifestError(f"--at: {path} is a ScoringJob; --at renders a run of a {KIND}")
        return doc
    if not at:
        raise ManifestError(f"--at: {path} is a {KIND}: give the scheduled time of the run to score "
                            "(e.g. --at 2026-11-24T10:00:00Z)")
    when = parse_time(at, "--at")
    note = fire_time_note(doc, when)
    if note:
        sys.stderr.write(note + "\n")
    job = render_at(doc, when)
    sys.stderr.write(f"tfscore: run {job.metadata.name} of schedule {doc.metadata.name} for {format_time(when)}\n")
    return job


def _load_schedule(path: str) -> ScoringSchedule:
    try:
        return load_any(path, (KIND,))
    except ManifestError as exc:
        _fail(str(exc))
        raise  # unreachable


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@schedule_app.command("next")
def next_(
    manifest: str = typer.Argument(..., help="ScoringSchedule manifest (YAML or JSON)."),
    n: int = typer.Option(5, "-n", min=1, max=1000, help="How many fire times."),
    after: str = typer.Option(None, "--after", help="Start after this time (ISO 8601 with a zone; default: now)."),
) -> None:
    """Print the next fire times in the schedule's time zone (and in UTC)."""
    schedule = _load_schedule(manifest)
    spec = schedule.spec
    try:
        start = parse_time(after, "--after") if after else datetime.now(UTC)
    except ManifestError as exc:
        _fail(str(exc))
    zone = load_zone(spec.time_zone)
    times = next_times(spec.schedule, zone, start, n)
    for t in times:
        local = t.astimezone(zone)
        sys.stdout.write(f"{local.isoformat()}  {local.tzname():<5}  {format_time(t)}\n")
    if len(times) < n:
        sys.stdout.write(f"(the schedule fires only {len(times)} time(s) in the next five years)\n")


@schedule_app.command("render")
def render(
    manifest: str = typer.Argument(..., help="ScoringSchedule manifest (YAML or JSON)."),
    at: str = typer.Option(..., "--at", help=AT_HELP),
) -> None:
    """Print the run's ScoringJob for one scheduled time (what the operator would create, without status)."""
    schedule = _load_schedule(manifest)
    try:
        when = parse_time(at, "--at")
        job = render_at(schedule, when)
    except ManifestError as exc:
        _fail(str(exc))
    note = fire_time_note(schedule, when)
    if note:
        sys.stderr.write(note + "\n")
    doc = {"apiVersion": job.api_version, "kind": job.kind, "metadata": job.metadata.model_dump(exclude_none=True),
           "spec": job.spec.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)}
    sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))
