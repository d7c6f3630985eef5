"""One run of a ScoringSchedule: its name and its rendered ScoringJob (pure; the operator and `tfscore run --at` share it).

A run is the jobTemplate as the user wrote it (fields left out stay out, so the API server defaults them as for any
ScoringJob) with every template field rendered for the scheduled time, `input.incremental.after` set to the schedule's
watermark once there is one, and `drift` set from driftPolicy once there is a previous successful run to compare with.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from tfscore.api.common import API_VERSION, GROUP, format_validation_error
from tfscore.api.schedule_template import render
from tfscore.api.scoringjob import KIND as JOB_KIND
from tfscore.api.scoringjob import ScoringJob
from tfscore.api.scoringschedule import TEMPLATE_PREFIX, TEMPLATED, ScoringSchedule, template_value

LABEL_SCHEDULE = f"{GROUP}/schedule"
ANNOTATION_SCHEDULED_TIME = f"{GROUP}/scheduled-time"
# A run's driver pod is `<run>-driver-<attempt>` (attempts up to backoffLimit + 1 = 101): the run name leaves room
# for that suffix within a 63-character DNS label.
RUN_NAME_MAX = 63 - len("-driver-101")


class RenderError(ValueError):
    """The run cannot be rendered; the message names the field."""


def run_name(schedule: str, scheduled: datetime) -> str:
    """`<schedule>-<unix minutes of the scheduled time>`: deterministic, so however many operators (or restarts) try,
    one fire time creates one run. A long schedule name is shortened with a hash of it (still deterministic)."""
    minutes = int(scheduled.timestamp()) // 60
    name = f"{schedule}-{minutes}"
    if len(name) <= RUN_NAME_MAX:
        return name
    digest = hashlib.sha256(schedule.encode()).hexdigest()[:8]
    keep = RUN_NAME_MAX - len(f"-{digest}-{minutes}")
    return f"{schedule[:keep].rstrip('-')}-{digest}-{minutes}"


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _set(wire: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = wire
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def render_spec(schedule: ScoringSchedule, scheduled: datetime, watermark: str | None = None,
                reference_uri: str | None = None) -> dict[str, Any]:
    """The run's ScoringJob spec in wire form (templates rendered, watermark and drift reference applied)."""
    spec = schedule.spec
    wire = spec.job_template.spec.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
    variables = {"scheduledTime": scheduled, "scheduleName": schedule.metadata.name}
    for path in TEMPLATED:
        text = template_value(wire, path)
        if text is not None:
            try:
                _set(wire, path, render(text, variables, spec.time_zone, field=TEMPLATE_PREFIX + path))
            except ValueError as exc:
                raise RenderError(str(exc)) from None
    if watermark is not None and spec.incremental_key is not None:
        _set(wire, "input.incremental.after", watermark)
    policy = spec.drift_policy
    if policy is not None and reference_uri:
        wire["drift"] = {"referenceUri": reference_uri, "metric": policy.metric.value, "action": policy.action.value,
                         **({"threshold": policy.threshold} if policy.threshold is not None else {})}
    return wire


def render_run(schedule: ScoringSchedule, scheduled: datetime, watermark: str | None = None,
               reference_uri: str | None = None) -> ScoringJob:
    """The run for `scheduled` as a validated ScoringJob (metadata: name, namespace, labels, annotations)."""
    meta = schedule.metadata
    template = schedule.spec.job_template.metadata
    name = run_name(meta.name, scheduled)
    doc = {
        "apiVersion": API_VERSION,
        "kind": JOB_KIND,
        "metadata": {
            "name": name,
            **({"namespace": meta.namespace} if meta.namespace else {}),
            "labels": {**template.labels, LABEL_SCHEDULE: meta.name},
            "annotations": {**template.annotations, ANNOTATION_SCHEDULED_TIME: format_time(scheduled)},
        },
        "spec": render_spec(schedule, scheduled, watermark, reference_uri),
    }
    try:
        return ScoringJob.model_validate(doc)
    except ValidationError as exc:
        raise RenderError(f"the run for {format_time(scheduled)} is not a valid ScoringJob: "
                          f"{format_validation_error(exc, 'spec.jobTemplate')}") from None
