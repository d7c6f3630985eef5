"""The ScoringSchedule kind (tfscore.io/v1alpha1): recurring ScoringJobs, CronJob-like, the one source of truth.

A ScoringSchedule creates an ordinary ScoringJob (a "run", owned by the schedule) at each fire time of `schedule` in
`timeZone`, rendered from `jobTemplate` with the run's scheduled time (schedule_template: `${scheduledTime…}`), an
incremental watermark (`after`) and a drift reference (the previous successful run's output). Time arithmetic:
schedule_time; rendering: schedule_run; the controller: tfscore.operator.scoringschedule.

As for ScoringJob, every cross-field rule is CEL for the API server and Python here with the same message, so
`kubectl apply` and `tfscore run schedule.yaml --at …` refuse the same manifests.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tfscore.api.common import CONDITIONS_LIST, Condition, ObjectMeta, StatusModel, WireModel
from tfscore.api.schedule_template import check_template, template_rule
from tfscore.api.schedule_time import SCHEDULE_RULE, TIME_ZONE_RULE, load_zone, parse_schedule
from tfscore.api.scoringjob import MAX_NAME, MAX_URI, DriftAction, ScoringJobSpec
from tfscore.api.statistics import DriftMetric

KIND = "ScoringSchedule"
PLURAL = "scoringschedules"
SINGULAR = "scoringschedule"
SHORT_NAMES = ["ss"]
DESCRIPTION = ("Recurring batch-inference runs: a ScoringJob created from jobTemplate at every fire time of a cron "
               "schedule, optionally scoring only the partitions that are new and checking the predictions for drift.")

MAX_RECENT_RUNS = 10       # status.recentRuns is bounded: the newest runs by scheduled time
MAX_SUMMARY_COLUMNS = 8    # and each record summarises at most this many prediction columns

# The jobTemplate.spec strings that may name the run's scheduled time, with the longest value admitted (CEL's cost
# estimate needs a bound; Python applies the same one). Paths are wire names below jobTemplate.spec. Never above the
# ScoringJob's own bound for the field (the overlay replaces it in the schedule's CRD): a template the API server takes
# must also pass the model, and its run the ScoringJob CRD.
TEMPLATED = {
    "input.uri": MAX_URI,
    "input.table": MAX_NAME,
    "input.where": 8192,
    "input.incremental.after": MAX_NAME,
    "input.incremental.until": MAX_NAME,
    "output.uri": MAX_URI,
    "quarantineUri": MAX_URI,
}
TEMPLATE_PREFIX = "spec.jobTemplate.spec."
_TEMPLATE_NOTE = (" A template: ${scheduledTime}, ${scheduledTime:%Y-%m-%d}, ${scheduledTime-1h:%H}, ${scheduleName} "
                  "are replaced per run (tfscore.api.schedule_template).")

INCREMENTAL_RULE = {
    "rule": "!has(self.jobTemplate.spec.input.incremental) || self.concurrencyPolicy != 'Allow'",
    "message": "jobTemplate.spec.input.incremental needs concurrencyPolicy Forbid or Replace (each run starts from the "
               "previous run's watermark, so runs must not overlap)",
    "fieldPath": ".concurrencyPolicy",
}
DRIFT_RULE = {
    "rule": "!has(self.driftPolicy) || !has(self.jobTemplate.spec.drift)",
    "message": "set driftPolicy or jobTemplate.spec.drift, not both (driftPolicy compares each run with the previous "
               "successful one)",
    "fieldPath": ".driftPolicy",
}


def _overlay() -> dict[str, Any]:
    """What crd.py lays over the ScoringJobSpec schema inside jobTemplate.spec: a bound and the template rule."""
    return {path: {"maxLength": limit, "x-kubernetes-validations": [template_rule(TEMPLATE_PREFIX + path)],
                   "x-append-description": _TEMPLATE_NOTE}
            for path, limit in TEMPLATED.items()}


class ConcurrencyPolicy(StrEnum):
    """What happens when a run is due while an earlier one is still active (Kubernetes CronJob's policies)."""

    allow = "Allow"
    forbid = "Forbid"
    replace = "Replace"


class TemplateMetadata(WireModel):
    """Labels and annotations every run gets (besides tfscore's own)."""

    labels: Annotated[dict[str, str], Field(description="Labels of each run's ScoringJob.")] = {}
    annotations: Annotated[dict[str, str], Field(description="Annotations of each run's ScoringJob.")] = {}


class JobTemplate(WireModel):
    """The ScoringJob each run is made from."""

    metadata: Annotated[TemplateMetadata, Field(description="Labels and annotations of each run.")] = \
        TemplateMetadata()
    spec: Annotated[ScoringJobSpec, Field(
        description="A ScoringJob spec. input.uri, input.table, input.where, input.incremental.after/until, "
                    "output.uri and quarantineUri are templates rendered with the run's scheduled time; "
                    "input.incremental.after is replaced by the schedule's watermark once a run has succeeded; "
                    "driftPolicy sets drift. Each run's ScoringJob shows its rendered spec.",
        json_schema_extra={"x-tfscore-overlay": _overlay()})]


class DriftPolicy(WireModel):
    """Compare each run's predictions with the previous successful run's (its output's _tfscore.json)."""

    metric: Annotated[DriftMetric, Field(description="psi (Population Stability Index over the reference's deciles, "
                                                     "the default) or ks (Kolmogorov-Smirnov statistic).")] = \
        DriftMetric.psi
    threshold: Annotated[float | None, Field(ge=0, description="Drift beyond this is exceeded (default: 0.25 for psi, "
                                                               "0.1 for ks).")] = None
    action: Annotated[DriftAction, Field(description="warn: the run succeeds, the schedule and the run get a "
                                                     "DriftExceeded condition and a Warning event; fail: the run "
                                                     "commits nothing and fails with reason DriftExceeded (never "
                                                     "retried).")] = DriftAction.warn


class ScoringScheduleSpec(WireModel):
    """When runs start (schedule, timeZone), how they may overlap, how many are kept, and what each one scores."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [INCREMENTAL_RULE, DRIFT_RULE]})

    schedule: Annotated[str, Field(min_length=1, max_length=256, description=(
        "Cron schedule: 5 fields (minute hour day-of-month month day-of-week; *, N, A-B, */S, lists, JAN-DEC, SUN-SAT) "
        "or a macro (@hourly, @daily, @weekly, @monthly, @yearly), as Kubernetes CronJob reads it."),
        json_schema_extra={"x-kubernetes-validations": [SCHEDULE_RULE]})]
    time_zone: Annotated[str, Field(min_length=1, max_length=64, description=(
        "IANA time zone the schedule is read in (e.g. Europe/Berlin); daylight-saving changes behave as in CronJob. "
        "Also the zone of ${scheduledTime:FORMAT} in templates."),
        json_schema_extra={"x-kubernetes-validations": [TIME_ZONE_RULE]})] = "UTC"
    concurrency_policy: Annotated[ConcurrencyPolicy, Field(description=(
        "Allow: runs may overlap. Forbid: a run due while another is active is skipped. Replace: the active run is "
        "deleted and the new one starts. Incremental schedules need Forbid or Replace."))] = ConcurrencyPolicy.allow
    starting_deadline_seconds: Annotated[int | None, Field(ge=0, description=(
        "A run not started within this many seconds of its scheduled time (operator down, schedule suspended) is "
        "missed, not started late. Absent: the most recent missed time always starts."))] = None
    successful_runs_history_limit: Annotated[int, Field(ge=0, le=1000, description=(
        "Succeeded runs (ScoringJobs) kept; older ones are deleted."))] = 3
    failed_runs_history_limit: Annotated[int, Field(ge=0, le=1000, description=(
        "Failed runs (ScoringJobs) kept; older ones are deleted."))] = 1
    suspend: Annotated[bool, Field(description=(
        "true: start no new runs (active runs carry on). On false again, missed times follow "
        "startingDeadlineSeconds."))] = False
    job_template: Annotated[JobTemplate, Field(description="What each run is.")]
    drift_policy: Annotated[DriftPolicy | None, Field(description=(
        "Compare each run's predictions with the previous successful run's and warn or fail beyond a "
        "threshold."))] = None

    @field_validator("schedule", "time_zone")
    @classmethod
    def _time(cls, v: str, info: ValidationInfo) -> str:
        check, field = (parse_schedule, "schedule") if info.field_name == "schedule" else (load_zone, "timeZone")
        try:
            check(v)
        except ValueError as exc:  # the message names the field already: say it once
            raise ValueError(str(exc).removeprefix(f"{field}: ")) from None
        return v

    @model_validator(mode="after")
    def _check_rules(self) -> ScoringScheduleSpec:
        spec = self.job_template.spec
        if spec.input.incremental is not None and self.concurrency_policy == ConcurrencyPolicy.allow:
            raise ValueError(INCREMENTAL_RULE["message"])
        if self.drift_policy is not None and spec.drift is not None:
            raise ValueError(DRIFT_RULE["message"])
        wire = spec.to_wire()
        for path, limit in TEMPLATED.items():
            value = template_value(wire, path)
            if value is None:
                continue
            field = TEMPLATE_PREFIX + path
            if len(value) > limit:
                raise ValueError(f"{field}: longer than {limit} characters")
            check_template(value, field)
        return self

    @property
    def incremental_key(self) -> str | None:
        inc = self.job_template.spec.input.incremental
        return inc.partition_key if inc is not None else None


def template_value(wire: dict[str, Any], path: str) -> str | None:
    """The string at a dotted wire path of a spec dict (None when absent)."""
    node: Any = wire
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, str) else None


class ScoringSchedule(WireModel):
    """A whole manifest, as given to `kubectl apply` or `tfscore run schedule.yaml --at …`."""

    api_version: Literal["tfscore.io/v1alpha1"]
    kind: Literal["ScoringSchedule"]
    metadata: ObjectMeta
    spec: ScoringScheduleSpec
    status: dict[str, Any] | None = None


# ---------------------------------------------------------------- status


class ColumnSummary(StatusModel):
    """A prediction column of one run, in brief (the run's ScoringJob status has the whole statistics)."""

    count: Annotated[int, Field(description="Finite values.")] = 0
    nulls: Annotated[int, Field(description="Null values.")] = 0
    nans: Annotated[int, Field(description="NaN values.")] = 0
    mean: Annotated[float | None, Field(description="Mean of the finite values.")] = None
    stddev: Annotated[float | None, Field(description="Population standard deviation.")] = None
    p50: Annotated[float | None, Field(description="Estimated median.")] = None


class DriftSummary(StatusModel):
    """How far one prediction column moved from the reference run."""

    metric: Annotated[DriftMetric, Field(description="psi or ks.")]
    value: Annotated[float, Field(description="The metric's value.")]
    threshold: Annotated[float | None, Field(description="The threshold applied.")] = None
    exceeded: Annotated[bool, Field(description="value > threshold.")] = False


class RunRecord(StatusModel):
    """One recent run and what it gave."""

    name: Annotated[str, Field(description="The run's ScoringJob.")]
    scheduled_time: Annotated[datetime, Field(description="The fire time the run is for.")]
    phase: Annotated[str, Field(description="Pending, Running, Succeeded, Failed, Suspended; Replaced or Deleted "
                                            "when the ScoringJob went away unfinished.")]
    reason: Annotated[str | None, Field(description="Why it failed (e.g. DriftExceeded, DriverFailed).")] = None
    completion_time: Annotated[datetime | None, Field(description="When it finished.")] = None
    rows: Annotated[int | None, Field(description="Rows written.")] = None
    output_uri: Annotated[str | None, Field(description="Where its output was committed.")] = None
    partitions: Annotated[list[str] | None, Field(description="Incremental: the partition values it scored "
                                                              "(at most 20 listed).", max_length=20)] = None
    watermark: Annotated[str | None, Field(description="Incremental: the watermark it reached.")] = None
    statistics: Annotated[dict[str, ColumnSummary] | None, Field(description="Per prediction column (at most "
                                                                             f"{MAX_SUMMARY_COLUMNS}).")] = None
    drift: Annotated[dict[str, DriftSummary] | None, Field(description="Per prediction column, against the "
                                                                       f"reference run (at most {MAX_SUMMARY_COLUMNS}).")] \
        = None


class ActiveRun(StatusModel):
    """A run that has not finished."""

    name: Annotated[str, Field(description="The run's ScoringJob.")]
    scheduled_time: Annotated[datetime, Field(description="The fire time it is for.")]


class IncrementalStatus(StatusModel):
    """Where incremental scoring stands: the next run scores partitions after `watermark`."""

    partition_key: Annotated[str, Field(description="The partition column.")]
    watermark: Annotated[str | None, Field(description="The highest partition value a succeeded run has scored.")] \
        = None
    run: Annotated[str | None, Field(description="The run that set it.")] = None
    scheduled_time: Annotated[datetime | None, Field(description="That run's scheduled time (only a later run "
                                                                 "moves the watermark).")] = None


class ScoringScheduleStatus(StatusModel):
    """What the operator observed and decided; written only by the operator. Times are the API server's."""

    observed_generation: Annotated[int | None, Field(description="The metadata.generation last acted on.")] = None
    last_schedule_time: Annotated[datetime | None, Field(description="The scheduled time of the last run started.")] \
        = None
    last_skipped_time: Annotated[datetime | None, Field(description="The last scheduled time not started (Forbid "
                                                                    "while active, or missed).")] = None
    next_schedule_time: Annotated[datetime | None, Field(description="When the next run is due (absent while "
                                                                     "suspended).")] = None
    last_successful_time: Annotated[datetime | None, Field(description="When the latest succeeded run finished.")] \
        = None
    last_successful_run: Annotated[str | None, Field(description="The latest succeeded run.")] = None
    last_successful_output_uri: Annotated[str | None, Field(description="Its output: the next run's drift "
                                                                        "reference.")] = None
    last_result: Annotated[str | None, Field(description="The latest finished run's phase (and reason).")] = None
    active: Annotated[list[ActiveRun], Field(description="Runs not finished yet.")] = []
    active_count: Annotated[int, Field(description="len(active).")] = 0
    recent_runs: Annotated[list[RunRecord], Field(description=f"The newest {MAX_RECENT_RUNS} runs, newest first.",
                                                  max_length=MAX_RECENT_RUNS)] = []
    incremental: Annotated[IncrementalStatus | None, Field(description="The incremental watermark.")] = None
    conditions: Annotated[list[Condition], Field(description="Ready (scheduling) and DriftExceeded (the latest "
                                                             "finished run's drift).",
                                                 json_schema_extra=CONDITIONS_LIST)] = []
    message: Annotated[str | None, Field(description="The latest human-readable state.")] = None


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule", "description": "Cron schedule."},
    {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
    {"name": "Active", "type": "integer", "jsonPath": ".status.activeCount", "description": "Runs not finished."},
    {"name": "Last Run", "type": "date", "jsonPath": ".status.lastScheduleTime",
     "description": "Scheduled time of the last run started."},
    {"name": "Last Result", "type": "string", "jsonPath": ".status.lastResult",
     "description": "The latest finished run's phase."},
    # A date column shows an age, and a future time is "<invalid>": the next run is shown as written.
    {"name": "Next Run", "type": "string", "jsonPath": ".status.nextScheduleTime", "description": "When the next "
                                                                                                  "run is due."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Time Zone", "type": "string", "jsonPath": ".spec.timeZone", "priority": 1},
    {"name": "Watermark", "type": "string", "jsonPath": ".status.incremental.watermark", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
]
