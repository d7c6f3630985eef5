"""ScoringJob API (tfscore.io/v1alpha1): the one source of truth.

These pydantic v2 models validate manifests for `tfscore run`, generate the CRD (`tfscore crd` → crds/scoringjob.yaml) and
type the operator's view of the object. Field names are camelCase on the wire (YAML/JSON) and snake_case in Python.
This module imports nothing but pydantic: both the operator and the Spark runtime use it.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

GROUP = "tfscore.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ScoringJob"
PLURAL = "scoringjobs"
SINGULAR = "scoringjob"
SHORT_NAMES = ["sj"]

# Runtime ↔ operator contract (both sides import these; the runtime imports nothing from Kubernetes libraries).
PROGRESS_ANNOTATION = f"{GROUP}/progress"   # driver pod annotation: JSON of Progress (wire form), patched every few s
TERMINATION_LOG = "/dev/termination-log"    # success: JSON of Result (wire form); failure: one line of cause
SPEC_MOUNT = "/etc/tfscore"                 # the ConfigMap <job>-spec, mounted in the driver pod
SPEC_FILE = f"{SPEC_MOUNT}/job.json"
SPARK_PROPERTIES_FILE = f"{SPEC_MOUNT}/spark.properties"
EXECUTOR_TEMPLATE_FILE = f"{SPEC_MOUNT}/executor-pod-template.yaml"

# Cross-field rules, written once as CEL for the API server (x-kubernetes-validations) and checked by the same models
# in Python (`_check_rules`), so `tfscore run` and `kubectl apply` refuse the same manifests with the same message.
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

MEMORY_PATTERN = r"^[0-9]+([.][0-9]+)?([kKmMgGtT][iI]?[bB]?)?$"
_MEMORY_UNITS_MIB = {"": 1 / (1024 * 1024), "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def memory_mib(quantity: str) -> int:
    """'2g', '2G', '2Gi', '512m', '512Mi', '1.5g' → MiB (binary units; Spark and Kubernetes spellings both accepted)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([kKmMgGtT]?)[iI]?[bB]?", quantity.strip())
    if not m:
        raise ValueError(f"not a memory quantity: {quantity!r} (use e.g. 512m, 2g, 2Gi)")
    value, unit = float(m.group(1)), m.group(2).lower()
    return max(1, int(value * _MEMORY_UNITS_MIB[unit]))


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase JSON form (what the API server stores and `tfscore run --spec` reads)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class EnvVar(_Model):
    """One core/v1 EnvVar of the driver and executor containers (also applied to `tfscore run` in local mode)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [ENV_VALUE_RULE]})

    # Kubernetes >= 1.32 accepts any printable ASCII but '=' (RelaxedEnvironmentVariableValidation).
    name: Annotated[str, Field(min_length=1, pattern=r"^[ -<>-~]+$",
                               description="Variable name: printable ASCII characters other than '='.")]
    value: Annotated[str | None, Field(description="The value; $(NAME) expands an earlier entry, $$ escapes.")] = None
    value_from: Annotated[dict[str, Any] | None, Field(description="core/v1 EnvVarSource (secretKeyRef, "
                                                                   "configMapKeyRef, fieldRef, ...).")] = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError(ENV_VALUE_RULE["message"])
        return self


class ModelSpec(_Model):
    """The TensorFlow SavedModel to score with."""

    uri: Annotated[str, Field(min_length=1, description="SavedModel location: a path, file://, s3://, gs://, hdfs://, "
                                                        "http(s):// … Either the SavedModel itself or a directory of "
                                                        "TF-Serving numeric version directories (1/, 2/, …).")]
    version: Annotated[str, Field(description="'latest' (the highest numeric version directory) or a pinned number. "
                                              "Ignored when uri is a SavedModel itself.",
                                  pattern=r"^(latest|[0-9]+)$",
                                  # `version: 3` is accepted (coerced to "3"), so the CRD takes int or string too.
                                  json_schema_extra={"x-kubernetes-int-or-string": True})] = "latest"
    signature: Annotated[str, Field(min_length=1, description="Signature to call.")] = "serving_default"
    tags: Annotated[list[str], Field(description="MetaGraph tags to load.")] = ["serve"]

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class InputFormat(str, Enum):
    parquet = "parquet"
    orc = "orc"
    csv = "csv"
    json = "json"
    table = "table"


class Input(_Model):
    """Where the rows come from."""

    uri: Annotated[str | None, Field(min_length=1, description="Files or directory to read (path or URI).")] = None
    table: Annotated[str | None, Field(min_length=1, description="Catalog table to read instead of uri.")] = None
    format: Annotated[InputFormat | None, Field(description="File format (default parquet; 'table' with table).")] = None
    options: Annotated[dict[str, str], Field(description="Reader options passed to Spark (e.g. header: 'true').")] = {}
    where: Annotated[str | None, Field(min_length=1, description="Optional Spark SQL filter applied before scoring.")] = None
    columns: Annotated[
        dict[str, str | list[str]],
        Field(description="Signature input name → one column (scalar, or an array reshaped to the input's shape) or a "
                          "list of scalar columns stacked into a [None, k] tensor. Inputs not listed come from the "
                          "column of the same name."),
    ] = {}
    reader: Annotated[
        Literal["auto", "arrow", "spark"],
        Field(description="auto: Python workers read plain Parquet splits with pyarrow (no JVM row conversion) when "
                          "there is no SQL filter; otherwise Spark reads. arrow/spark force one reader."),
    ] = "auto"

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
        return self


class OutputFormat(str, Enum):
    parquet = "parquet"
    orc = "orc"
    csv = "csv"
    json = "json"


class WriteMode(str, Enum):
    error_if_exists = "errorIfExists"
    overwrite = "overwrite"
    append = "append"


class Output(_Model):
    """Where the predictions go."""

    uri: Annotated[str, Field(min_length=1, description="Output directory (path or URI).")]
    format: Annotated[OutputFormat, Field(description="File format.")] = OutputFormat.parquet
    mode: Annotated[
        WriteMode,
        Field(description="errorIfExists (default): refuse to touch existing output. overwrite: replace it only when "
                          "the job succeeds (the old data survives a failed job). append: add files; a retried task "
                          "never duplicates rows."),
    ] = WriteMode.error_if_exists
    passthrough: Annotated[list[str], Field(description="Input columns copied to the output beside the predictions "
                                                        "(ids).")] = []
    predictions: Annotated[
        dict[str, str],
        Field(description="Signature output name → output column name. Empty: every signature output under its own "
                          "name."),
    ] = {}
    partition_by: Annotated[list[str], Field(description="Output columns to partition the files by.")] = []
    options: Annotated[dict[str, str], Field(description="Writer options (e.g. compression: zstd).")] = {}
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


class Resources(_Model):
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
    pass


class Executor(Resources):
    memory: Annotated[str, Field(pattern=MEMORY_PATTERN, description="Memory, e.g. 2g, 4Gi.")] = "2g"
    instances: Annotated[int, Field(ge=1, le=10000, description="Number of executor pods.")] = 2
    gpu: Annotated[int, Field(ge=0, le=16, description="nvidia.com/gpu per executor (GPU image variant).")] = 0


class OnInvalidRow(str, Enum):
    fail = "fail"
    quarantine = "quarantine"


class ScoringJobSpec(_Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [QUARANTINE_RULE]})

    model: ModelSpec
    input: Annotated[Input, Field(json_schema_extra={"x-kubernetes-validations": [INPUT_SOURCE_RULE,
                                                                                  TABLE_FORMAT_RULE]})]
    output: Output
    batch_size: Annotated[int, Field(ge=1, le=10_000_000, description="Rows per TensorFlow call.")] = 4096
    on_invalid_row: Annotated[
        OnInvalidRow,
        Field(description="fail (default): the job fails naming the row's column and file. quarantine: invalid rows "
                          "and the reason are written to quarantineUri."),
    ] = OnInvalidRow.fail
    quarantine_uri: Annotated[str | None, Field(min_length=1, description="Where quarantined rows go.")] = None
    driver: Driver = Driver()
    executor: Executor = Executor()
    image: Annotated[str, Field(description="Runtime image; empty: the operator's pinned runtime image (by digest).")] = ""
    spark_conf: Annotated[dict[str, str], Field(description="Extra Spark configuration.")] = {}
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
    service_account_name: Annotated[str | None, Field(description="Driver service account (default: tfscore-driver).")] = None
    node_selector: dict[str, str] = {}
    tolerations: Annotated[list[dict[str, Any]], Field(description="core/v1 Tolerations for driver and executors.")] = []
    env: Annotated[list[EnvVar], Field(description="Extra env for driver and executors (core/v1 EnvVar). "
                                                           "Credentials belong in Secrets (valueFrom/envFrom).")] = []
    env_from: Annotated[list[dict[str, Any]], Field(description="core/v1 EnvFromSource list (Secrets, ConfigMaps).")] = []
    volumes: Annotated[list[dict[str, Any]], Field(description="core/v1 Volumes for driver and executors.")] = []
    volume_mounts: Annotated[list[dict[str, Any]], Field(description="core/v1 VolumeMounts for driver and "
                                                                     "executors.")] = []

    @model_validator(mode="after")
    def _check_rules(self) -> ScoringJobSpec:
        if self.on_invalid_row == OnInvalidRow.quarantine and not self.quarantine_uri:
            raise ValueError(QUARANTINE_RULE["message"])
        overlap = set(self.output.passthrough) & set(self.output.predictions.values())
        if overlap:
            raise ValueError(f"output.passthrough and output.predictions both name column(s) {sorted(overlap)}")
        return self


class ObjectMeta(BaseModel):
    """The parts of metadata tfscore reads; everything else is kept as-is."""

    model_config = ConfigDict(extra="allow")

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    namespace: str | None = None


class ScoringJob(_Model):
    """A whole manifest, as given to `kubectl apply` or `tfscore run`."""

    api_version: Literal["tfscore.io/v1alpha1"]
    kind: Literal["ScoringJob"]
    metadata: ObjectMeta
    spec: ScoringJobSpec
    status: dict[str, Any] | None = None


# ---------------------------------------------------------------- status


class Phase(str, Enum):
    pending = "Pending"
    running = "Running"
    succeeded = "Succeeded"
    failed = "Failed"
    suspended = "Suspended"


class Condition(_Model):
    model_config = ConfigDict(extra="ignore")

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None


class ModelStatus(_Model):
    model_config = ConfigDict(extra="ignore")

    uri: str | None = None
    version: str | None = None
    fingerprint: str | None = None
    signature: str | None = None


class Progress(_Model):
    model_config = ConfigDict(extra="ignore")

    rows_scored: int = 0
    tasks_done: int = 0
    tasks_total: int = 0
    percent: int = 0


class Result(_Model):
    """What a finished run reports (the driver's termination message; `tfscore run` prints it)."""

    model_config = ConfigDict(extra="ignore")

    rows_in: int
    rows_out: int
    rows_quarantined: int = 0
    seconds: float
    rows_per_second: float
    output_uri: str
    quarantine_uri: str | None = None
    model: ModelStatus | None = None


class ScoringJobStatus(_Model):
    model_config = ConfigDict(extra="ignore")

    phase: Phase | None = None
    conditions: Annotated[list[Condition], Field(json_schema_extra={"x-kubernetes-list-type": "map",
                                                                    "x-kubernetes-list-map-keys": ["type"]})] = []
    observed_generation: int | None = None
    attempts: Annotated[int, Field(description="Driver pods started so far (the current attempt's number).")] = 0
    failed: Annotated[int, Field(description="Attempts that failed (counted against backoffLimit).")] = 0
    next_attempt_time: Annotated[datetime | None, Field(description="When the next attempt starts (back-off after a "
                                                                    "failed attempt).")] = None
    start_time: datetime | None = None
    completion_time: datetime | None = None
    driver_pod: str | None = None
    model: ModelStatus | None = None
    progress: Progress | None = None
    result: Result | None = None
    message: str | None = None


def format_validation_error(exc: Exception, prefix: str = "") -> str:
    """One line per problem, each naming the field path in wire (camelCase) form: 'spec.output.mode: …'."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    lines = []
    for err in errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("function-after", "function-before"))
        path = ".".join(p for p in (prefix, loc) if p)
        msg = err.get("msg", "")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{path}: {msg}" if path else msg)
    return "\n".join(lines)
