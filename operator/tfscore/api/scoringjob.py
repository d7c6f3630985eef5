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
    MEMORY_PATTERN,
    Condition,
    ObjectMeta,
    StatusModel,
    WireModel,
    core_object,
    memory_mib,
)
from tfscore.api.contract import ModelStatus, Progress, Result
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
INPUT_SOURCE_RULE = {
    "rule": "has(self.uri) != has(self.table)",
    "message": "exactly one of input.uri or input.table must be set",
}
TABLE_FORMAT_RULE = {
    "rule": "!has(self.table) || !has(self.format) || self.format == 'table'",
    "message": "input.format must be 'table' (or unset) when input.table is set",
}
ENV_VALUE_RULE = {
    "rule": "!has(self.value) || !has(self.valueFrom)",
    "message": "an env entry takes value or valueFrom, not both",
    "fieldPath": ".valueFrom",
}


# Size bounds: the CRD's maxLength / maxItems / maxProperties, so the API server refuses an oversized spec at once and
# CEL rules (the CRD's and the chart's admission policy) have bounded cost. Each is what a real job needs, many times
# over; the operator also refuses a spec whose ConfigMap would pass builders.CONFIG_MAP_LIMIT.
MAX_URI, MAX_NAME, MAX_VALUE, MAX_ITEMS = 2048, 256, 16384, 256
MAX_MODELS = 8  # spec.models (the admission policy spells the indexes out: CEL has no range)
Name = Annotated[str, Field(max_length=MAX_NAME)]
Value = Annotated[str, Field(max_length=MAX_VALUE)]


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


class InputFormat(StrEnum):
    """File format of the input (or `table` for a catalog table)."""

    parquet = "parquet"
    orc = "orc"
    csv = "csv"
    json = "json"
    table = "table"


class Incremental(WireModel):
    """Score only the Hive partitions `<partitionKey>=<value>/` of input.uri whose value lies in (after, until].

    Values are compared as Spark infers partition types (integers as integers, dates and timestamps in time order, the
    rest as strings). A ScoringSchedule sets `after` to its watermark for each run; the run's result reports the
    partitions it scored and the new watermark."""

    partition_key: Annotated[str, Field(min_length=1, max_length=MAX_NAME,
                                        description="The partition column (e.g. dt).")]
    after: Annotated[str | None, Field(max_length=MAX_NAME,
                                       description="Score partitions with a value greater than this (absent: "
                                                   "from the first).")] = None
    until: Annotated[str | None, Field(max_length=MAX_NAME, description="And at most this (absent: up to the newest); e.g. the "
                                                   "scheduled hour, so a partition still being written is left for "
                                                   "the next run.")] = None


class Input(WireModel):
    """Where the rows come from."""

    uri: Annotated[str | None, Field(min_length=1, max_length=MAX_URI, description="Files or directory to read "
                                                                                   "(path or URI).")] = None
    table: Annotated[str | None, Field(min_length=1, max_length=MAX_NAME, description="Catalog table to read "
                                                                                      "instead of uri.")] = None
    format: Annotated[InputFormat | None, Field(description="File format (default parquet; 'table' with table).")] = None
    options: Annotated[dict[str, Value], Field(max_length=64, description="Reader options passed to Spark (e.g. "
                                                                          "header: 'true').")] = {}
    where: Annotated[str | None, Field(min_length=1, max_length=MAX_VALUE, description="Optional Spark SQL filter "
                                                                                       "applied before scoring.")] = None
    columns: Annotated[
        dict[str, Name | Annotated[list[Name], Field(max_length=65536)]],
        Field(max_length=MAX_ITEMS,
              description="Signature input name → one column (scalar, or an array reshaped to the input's shape) or a "
                          "list of scalar columns stacked into a [None, k] tensor. Inputs not listed come from the "
                          "column of the same name."),
    ] = {}
    reader: Annotated[
        Literal["auto", "arrow", "spark"],
        Field(description="auto: Python workers read plain Parquet splits with pyarrow (no JVM row conversion) when "
                          "there is no SQL filter; otherwise Spark reads. arrow/spark force one reader."),
    ] = "auto"
    incremental: Annotated[Incremental | None, Field(description="Score only new Hive partitions (recurring runs).")] \
        = None

    @property
    def resolved_format(self) -> str:
        if self.format is not None:
            return self.format if isinstance(self.format, str) else self.format.value
        return "table" if self.table else "parquet"

    @model_validator(mode="after")
    def _check_rules(self) -> Input:
        if (self.uri is None) == (self.table is None):
            raise ValueError(INPUT_SOURCE_RULE["message"])
        if self.table is not None and self.format not in (None, "table", InputFormat.table):
            raise ValueError(TABLE_FORMAT_RULE["message"])
        if self.uri is not None and self.format in ("table", InputFormat.table):
            raise ValueError("input.format 'table' needs input.table, not input.uri")
        if self.reader == "arrow" and (self.where or self.resolved_format != "parquet"):
            raise ValueError("input.reader 'arrow' reads plain Parquet files only (no where, format parquet)")
        if self.incremental is not None and self.uri is None:
            raise ValueError("input.incremental needs input.uri (Hive partition directories), not input.table")
        return self


class OutputFormat(StrEnum):
    """File format of the output."""

    parquet = "parquet"
    orc = "orc"
    csv = "csv"
    json = "json"


class WriteMode(StrEnum):
    """What happens to an existing output."""

    error_if_exists = "errorIfExists"
    overwrite = "overwrite"
    append = "append"


class Output(WireModel):
    """Where the predictions go."""

    uri: Annotated[str, Field(min_length=1, max_length=MAX_URI, description="Output directory (path or URI).")]
    format: Annotated[OutputFormat, Field(description="File format.")] = OutputFormat.parquet
    mode: Annotated[
        WriteMode,
        Field(description="errorIfExists (default): refuse to touch existing output. overwrite: replace it only when "
                          "the job succeeds (the old data survives a failed job). append: add files; a retried task "
                          "never duplicates rows."),
    ] = WriteMode.error_if_exists
    passthrough: Annotated[list[Name], Field(max_length=4096, description="Input columns copied to the output beside "
                                                                          "the predictions (ids).")] = []
    predictions: Annotated[
        dict[str, Name],
        Field(max_length=MAX_ITEMS,
              description="Signature output name → output column name. Empty: every signature output under its own "
                          "name."),
    ] = {}
    partition_by: Annotated[list[Name], Field(max_length=64, description="Output columns to partition the files "
                                                                         "by.")] = []
    options: Annotated[dict[str, Value], Field(max_length=64, description="Writer options (e.g. compression: "
                                                                          "zstd).")] = {}
    writer: Annotated[
        Literal["auto", "arrow", "spark"],
        Field(description="auto: Python workers write unpartitioned Parquet themselves with pyarrow (no JVM row "
                          "conversion; attempt-unique files, only the successful attempt's committed); otherwise "
                          "Spark's writer. arrow/spark force one writer."),
    ] = "auto"

    @model_validator(mode="after")
    def _check_writer(self) -> Output:
        if self.writer == "arrow" and (self.format != "parquet" or self.partition_by
                                       or set(self.options) - {"compression"}):
            raise ValueError("output.writer 'arrow' writes unpartitioned Parquet only (options: compression)")
        return self


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
