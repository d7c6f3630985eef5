"""The ScoringJob kind (tfscore.io/v1alpha1): spec and status, the one source of truth.

These pydantic v2 models validate manifests for `tfscore run`, generate the CRD (`tfscore crd` → crds/scoringjob.yaml) and
type the operator's view of the object. Cross-field rules are written once as CEL for the API server
(x-kubernetes-validations) and checked by the same models in Python, so `tfscore run` and `kubectl apply` refuse the same
manifests with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from tfscore.api.common import (
    CONDITIONS_LIST,
    MAX_ITEMS,
    MAX_NAME,
    MAX_URI,
    MAX_VALUE,
    MEMORY_PATTERN,
    Condition,
    Name,
    ObjectMeta,
    StatusModel,
    Value,
    WireModel,
    core_object,
    memory_mib,
)
from tfscore.api.contract import ModelStatus, Progress, Result
from tfscore.api.dataio import (  # noqa: F401 - re-exported: the kind's spec types live under its name
    INPUT_SOURCE_RULE,
    TABLE_FORMAT_RULE,
    Incremental,
    Input,
    InputFormat,
    Output,
    OutputFormat,
    WriteMode,
)
from tfscore.api.statistics import DriftMetric

KIND = "ScoringJob"
PLURAL = "scoringjobs"
SINGULAR = "scoringjob"
SHORT_NAMES = ["sj"]

QUARANTINE_RULE = {
    "rule": "self.onInvalidRow != 'quarantine' || has(self.quarantineUri)",
    "message": "quarantineUri is required when onInvalidRow is quarantine",
    "fieldPath": ".quarantineUri",
}
MAX_MODELS = 8  # spec.models (the admission policy spells the indexes out: CEL has no range)
ENV_VALUE_RULE = {
    "rule": "!has(self.value) || !has(self.valueFrom)",
    "message": "an env entry takes value or valueFrom, not both",
    "fieldPath": ".valueFrom",
}




class EnvVar(WireModel):
    """One core/v1 EnvVar of the driver and executor containers (also applied to `tfscore run` in local mode)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [ENV_VALUE_RULE]})

    # Kubernetes >= 1.32 accepts any printable ASCII but '=' (RelaxedEnvironmentVariableValidation).
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=r"^[ -<>-~]+$",
                               description="Variable name: printable ASCII characters other than '='.")]
    value: Annotated[str | None, Field(max_length=MAX_VALUE, description="The value; $(NAME) expands an earlier "
                                                                         "entry, $$ escapes.")] = None
    value_from: Annotated[dict[str, Any] | None, Field(description="core/v1 EnvVarSource (secretKeyRef, "
                                                                   "configMapKeyRef, fieldRef, ...).")] = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError(ENV_VALUE_RULE["message"])
        return self


class ModelSpec(WireModel):
    """The TensorFlow model to score with: a SavedModel, or a Keras 3 `.keras` archive."""

    uri: Annotated[str, Field(min_length=1, max_length=MAX_URI,
                              description="Model location: a path, file://, s3://, gs://, abfs[s]://, http(s):// … A "
                                          "SavedModel directory, a `.keras` archive, or a directory of TF-Serving "
                                          "numeric version directories (1/, 2/, …) each holding either.")]
    version: Annotated[str, Field(description="'latest' (the highest numeric version directory) or a pinned number. "
                                              "Ignored when uri is a SavedModel itself.",
                                  pattern=r"^(latest|[0-9]+)$",
                                  # `version: 3` is accepted (coerced to "3"), so the CRD takes int or string too.
                                  json_schema_extra={"x-kubernetes-int-or-string": True})] = "latest"
    signature: Annotated[str, Field(min_length=1, max_length=MAX_NAME,
                                    description="Signature to call (SavedModel; a .keras model is called as it is).")] = \
        "serving_default"
    tags: Annotated[list[Name], Field(max_length=16, description="MetaGraph tags to load (SavedModel).")] = ["serve"]

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


MODEL_NAME_PATTERN = r"^[a-z]([a-z0-9_]{0,30}[a-z0-9])?$"
MODELS_RULE = {
    "rule": "has(self.model) != (has(self.models) && size(self.models) > 0)",
    "message": "exactly one of model or models must be set",
}
MODEL_NAMES_RULE = {
    "rule": "self.all(m, self.exists_one(n, n.name == m.name))",
    "message": "models: every model needs its own name",
}


PREDICTIONS_RULE = {
    "rule": "!has(self.models) || size(self.models) == 0 || !has(self.output.predictions) || "
            "size(self.output.predictions) == 0",
    "message": "with models, name the prediction columns in each model's predictions, not in output.predictions",
}


class NamedModel(ModelSpec):
    """One of several models scored in the same pass over the input (champion first, then challengers)."""

    # max_length: the API server bounds the cost of MODEL_NAMES_RULE's pairwise comparison by it (the pattern says 32
    # too, but CEL's cost estimator reads only maxLength/maxItems).
    name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN, max_length=32,
                               description="Names the model in messages, the status and the default prediction columns "
                                           "(<name>_<output>).")]
    columns: Annotated[
        dict[str, Name | Annotated[list[Name], Field(max_length=65536)]],
        Field(max_length=MAX_ITEMS,
              description="This model's signature input → column(s), where it differs from input.columns."),
    ] = {}
    predictions: Annotated[
        dict[str, Name],
        Field(max_length=MAX_ITEMS,
              description="This model's signature output → output column (default: <name>_<output> for every output)."),
    ] = {}


class Resources(WireModel):
    """CPU and memory of one pod (Spark's cores and memory; the pod's requests and limits)."""

    cores: Annotated[int, Field(ge=1, le=256, description="CPU cores (Spark cores; the pod's CPU request/limit).")] = 1
    memory: Annotated[str, Field(pattern=MEMORY_PATTERN, description="Memory, e.g. 1g, 2Gi, 512m.")] = "1g"
    memory_overhead: Annotated[
        str | None,
        Field(pattern=MEMORY_PATTERN, description="Extra non-JVM memory for Python workers and TensorFlow "
                                                  "(default: max(384m, 40% of memory))."),
    ] = None

    @field_validator("memory", "memory_overhead")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None:
            memory_mib(v)
        return v


class Driver(Resources):
    """The driver pod: plans the run, hosts Spark's scheduler and commits the output."""


class Executor(Resources):
    """The executor pods: read, score and write the data."""

    memory: Annotated[str, Field(pattern=MEMORY_PATTERN, description="Memory, e.g. 2g, 4Gi.")] = "2g"
    instances: Annotated[int, Field(ge=1, le=10000, description="Number of executor pods.")] = 2
    gpu: Annotated[int, Field(ge=0, le=16, description="nvidia.com/gpu per executor (GPU image variant).")] = 0


class OnInvalidRow(StrEnum):
    """What a row that cannot be scored does."""

    fail = "fail"
    quarantine = "quarantine"


class DriftAction(StrEnum):
    """What a drift beyond the threshold does."""

    warn = "warn"
    fail = "fail"


class DriftCheck(WireModel):
    """Compare this run's prediction distribution with a reference run's (a ScoringSchedule sets it to the previous
    successful run's output)."""

    reference_uri: Annotated[str, Field(min_length=1, max_length=MAX_URI,
                                        description="The reference run's output (its _tfscore.json holds "
                                                    "the prediction sketches).")]
    metric: Annotated[DriftMetric, Field(description="psi (default) or ks.")] = DriftMetric.psi
    threshold: Annotated[float | None, Field(ge=0, description="Drift beyond this is exceeded (default: 0.25 for psi, "
                                                               "0.1 for ks).")] = None
    action: Annotated[DriftAction, Field(description="warn: a condition and an event; fail: nothing is committed and "
                                                     "the run fails with reason DriftExceeded.")] = DriftAction.warn


class ScoringJobSpec(WireModel):
    """What to score (model), over what (input), into what (output), and how the run is resourced and retried."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [QUARANTINE_RULE, MODELS_RULE,
                                                                             PREDICTIONS_RULE]})

    model: Annotated[ModelSpec | None, Field(description="The model (or use models for several in one pass).")] = None
    models: Annotated[list[NamedModel], Field(max_length=MAX_MODELS, description="Several models scored in one pass over the "
                                                                        "input, champion first (instead of model).",
                                              json_schema_extra={"x-kubernetes-validations": [MODEL_NAMES_RULE]})] = []
    input: Annotated[Input, Field(json_schema_extra={"x-kubernetes-validations": [INPUT_SOURCE_RULE,
                                                                                  TABLE_FORMAT_RULE]})]
    output: Output
    batch_size: Annotated[int, Field(ge=1, le=10_000_000, description="Rows per TensorFlow call.")] = 4096
    on_invalid_row: Annotated[
        OnInvalidRow,
        Field(description="fail (default): the job fails naming the row's column and file. quarantine: invalid rows "
                          "and the reason are written to quarantineUri."),
    ] = OnInvalidRow.fail
    quarantine_uri: Annotated[str | None, Field(min_length=1, max_length=MAX_URI, description="Where quarantined "
                                                                                             "rows go.")] = None
    driver: Driver = Driver()
    executor: Executor = Executor()
    image: Annotated[str, Field(max_length=512, description="Runtime image; empty: the operator's pinned runtime "
                                                            "image (by digest).")] = ""
    spark_conf: Annotated[dict[str, Value], Field(max_length=MAX_ITEMS, description="Extra Spark configuration (the "
                                                                                    "namespace's ScoringPolicy says "
                                                                                    "which keys).")] = {}
    backoff_limit: Annotated[int, Field(ge=0, le=100, description="Retries of a failed driver before the job fails.")] = 2
    active_deadline_seconds: Annotated[
        int | None, Field(ge=1, description="Wall-clock limit from the first start; then Failed (DeadlineExceeded).")
    ] = None
    startup_timeout_seconds: Annotated[
        int, Field(ge=1, description="A driver pod not running after this long (unschedulable, image not pullable) "
                                     "fails the attempt with the reason.")
    ] = 600
    ttl_seconds_after_finished: Annotated[
        int | None, Field(ge=0, description="Delete the finished ScoringJob (and all it owns) after this long.")
    ] = None
    suspend: Annotated[bool, Field(description="true: stop (or do not start) the run; false again resumes.")] = False
    service_account_name: Annotated[str | None, Field(max_length=253, description="Driver service account (default: "
                                                                                  "tfscore-driver).")] = None
    priority_class_name: Annotated[
        str | None,
        Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
              description="PriorityClass of the driver and executor pods; with a Kueue queue (label "
                          "kueue.x-k8s.io/queue-name) also the Workload's priority, which decides preemption."),
    ] = None
    node_selector: Annotated[dict[str, Annotated[str, Field(max_length=63)]],
                             Field(max_length=64, description="Node labels the driver and executor pods must match.")] = {}
    tolerations: Annotated[list[core_object("Toleration")],
                           Field(max_length=64, description="core/v1 Tolerations for driver and executors.")] = []
    env: Annotated[list[EnvVar], Field(max_length=MAX_ITEMS, description="Extra env for driver and executors (core/v1 EnvVar). "
                                                           "Credentials belong in Secrets (valueFrom/envFrom).")] = []
    env_from: Annotated[list[core_object("EnvFromSource")],
                        Field(max_length=32, description="core/v1 EnvFromSource list (Secrets, ConfigMaps); each "
                                                         "needs a prefix unless the ScoringPolicy says otherwise.")] = []
    volumes: Annotated[list[core_object("Volume")], Field(max_length=64, description="core/v1 Volumes for driver and "
                                                                                     "executors.")] = []
    volume_mounts: Annotated[list[core_object("VolumeMount")], Field(max_length=64, description="core/v1 VolumeMounts "
                                                                                               "for driver and "
                                                                     "executors.")] = []
    drift: Annotated[DriftCheck | None, Field(description="Compare the predictions with a reference run's.")] = None

    @model_validator(mode="after")
    def _check_rules(self) -> ScoringJobSpec:
        if self.on_invalid_row == OnInvalidRow.quarantine and not self.quarantine_uri:
            raise ValueError(QUARANTINE_RULE["message"])
        if (self.model is None) == (not self.models):
            raise ValueError(MODELS_RULE["message"])
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(MODEL_NAMES_RULE["message"])
        if self.models and self.output.predictions:
            raise ValueError(PREDICTIONS_RULE["message"])
        overlap = set(self.output.passthrough) & set(self.output.predictions.values())
        if overlap:
            raise ValueError(f"output.passthrough and output.predictions both name column(s) {sorted(overlap)}")
        return self


@dataclass(frozen=True)
class ModelEntry:
    """One model of a run as the runtime scores it: how messages name it (`model` or `models[1] (challenger)`), its
    spec, its input columns and its prediction names."""

    index: int
    name: str  # "" for the single `model`
    spec: ModelSpec
    columns: dict[str, str | list[str]]  # its own mapping: every key must be an input of its signature
    predictions: dict[str, str]
    prefix: str  # the default prediction column prefix ("" for the single model)
    shared: dict[str, str | list[str]] = field(default_factory=dict)  # input.columns: used where its signature has it

    @property
    def label(self) -> str:
        return "model" if not self.name else f"models[{self.index}] ({self.name})"


def model_entries(spec: ScoringJobSpec) -> list[ModelEntry]:
    """`model`, or every entry of `models`, as the runtime scores them."""
    if spec.model is not None:
        return [ModelEntry(0, "", spec.model, dict(spec.input.columns), dict(spec.output.predictions), "")]
    return [ModelEntry(i, m.name, ModelSpec.model_validate(m.model_dump(include=set(ModelSpec.model_fields))),
                       dict(m.columns), dict(m.predictions), f"{m.name}_", dict(spec.input.columns))
            for i, m in enumerate(spec.models)]


class ScoringJob(WireModel):
    """A whole manifest, as given to `kubectl apply` or `tfscore run`."""

    api_version: Literal["tfscore.io/v1alpha1"]
    kind: Literal["ScoringJob"]
    metadata: ObjectMeta
    spec: ScoringJobSpec
    status: dict[str, Any] | None = None


# ---------------------------------------------------------------- status


class Phase(StrEnum):
    """Where a ScoringJob is in its life (Kubernetes Job-like)."""

    pending = "Pending"
    queued = "Queued"      # waiting for admission by a Kueue queue (label kueue.x-k8s.io/queue-name)
    running = "Running"
    succeeded = "Succeeded"
    failed = "Failed"
    suspended = "Suspended"


class ScoringJobStatus(StatusModel):
    """What the operator observed and decided; written only by the operator."""

    phase: Annotated[Phase | None, Field(description="Pending, Queued, Running, Succeeded, Failed or Suspended.")] \
        = None
    conditions: Annotated[list[Condition], Field(description="Queued, Running, Succeeded, Failed, Suspended … (Kubernetes "
                                                             "condition semantics).",
                                                 json_schema_extra=CONDITIONS_LIST)] = []
    observed_generation: Annotated[int | None, Field(description="The metadata.generation last acted on.")] = None
    attempts: Annotated[int, Field(description="Driver pods started so far (the current attempt's number; one stopped "
                                               "by suspend or a Kueue eviction is not a failure).")] = 0
    failed: Annotated[int, Field(description="Attempts that failed (counted against backoffLimit).")] = 0
    next_attempt_time: Annotated[datetime | None, Field(description="When the next attempt starts (back-off after a "
                                                                    "failed attempt).")] = None
    start_time: Annotated[datetime | None, Field(description="When the first attempt started (reset on resume).")] = None
    completion_time: Annotated[datetime | None, Field(description="When the job succeeded or failed.")] = None
    driver_pod: Annotated[str | None, Field(description="The current attempt's driver pod.")] = None
    driver_pod_uid: Annotated[str | None, Field(description="Its uid: the one pod the operator created for the "
                                                            "attempt (another pod under its name is not adopted).")] = None
    spec_hash: Annotated[str | None, Field(description="sha256 of the bound spec (job.json); a ConfigMap whose "
                                                       "job.json differs is refused.")] = None
    auth_secret: Annotated[str | None, Field(description="The job's Spark authentication Secret (created by the "
                                                         "operator, owned by the job).")] = None
    model_summary: Annotated[str | None, Field(description="The model's uri (the first one's, and how many more).")] \
        = None
    model: Annotated[ModelStatus | None, Field(description="The model version the run resolved.")] = None
    progress: Annotated[Progress | None, Field(description="The running attempt's progress.")] = None
    result: Annotated[Result | None, Field(description="The finished run's counts and output.")] = None
    message: Annotated[str | None, Field(description="The latest human-readable state.")] = None
