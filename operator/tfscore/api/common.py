"""What every tfscore.io kind shares: the group/version, the wire-form base models, conditions, object metadata, quantities
and the one way a validation error is worded.

Field names are camelCase on the wire (YAML/JSON) and snake_case in Python. This module imports nothing but pydantic: the
operator, the Spark runtime and the CLI all use it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "tfscore.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MEMORY_PATTERN = r"^[0-9]+([.][0-9]+)?([kKmMgGtT][iI]?[bB]?)?$"
_MEMORY_UNITS_MIB = {"": 1 / (1024 * 1024), "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def memory_mib(quantity: str) -> int:
    """'2g', '2G', '2Gi', '512m', '512Mi', '1.5g' → MiB (binary units; Spark and Kubernetes spellings both accepted)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([kKmMgGtT]?)[iI]?[bB]?", quantity.strip())
    if not m:
        raise ValueError(f"not a memory quantity: {quantity!r} (use e.g. 512m, 2g, 2Gi)")
    value, unit = float(m.group(1)), m.group(2).lower()
    return max(1, int(value * _MEMORY_UNITS_MIB[unit]))


class WireModel(BaseModel):
    """Base of every spec model: camelCase aliases, unknown fields refused, defaults validated."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase JSON form (what the API server stores and `tfscore run --spec` reads)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(WireModel):
    """Base of every status model: what the operator writes and reads back. Unknown fields are ignored, not refused, so
    an older operator reads a newer one's status (and a status written by hand never stops a reconcile)."""

    model_config = ConfigDict(extra="ignore")


class Condition(StatusModel):
    """One status condition, with Kubernetes semantics (lastTransitionTime moves only when status flips)."""

    type: Annotated[str, Field(description="Condition type, e.g. Running, Succeeded, Failed, Queued.")]
    status: Annotated[Literal["True", "False", "Unknown"], Field(description="True, False or Unknown.")]
    reason: Annotated[str, Field(description="One CamelCase word saying why.")] = ""
    message: Annotated[str, Field(description="A sentence for humans.")] = ""
    last_transition_time: Annotated[datetime | None, Field(description="When status last changed.")] = None


def core_object(kind: str) -> Any:
    """A core/v1 object tfscore passes through as given (Toleration, Volume, …): free-form in the schema, described."""
    return Annotated[dict[str, Any], Field(description=f"A core/v1 {kind}, passed through as given.")]


CONDITIONS_LIST = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


class ObjectMeta(BaseModel):
    """The parts of metadata tfscore reads; everything else is kept as-is."""

    model_config = ConfigDict(extra="allow")

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    namespace: str | None = None


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


# Size bounds: the CRD's maxLength / maxItems / maxProperties, so the API server refuses an oversized spec at once and
# CEL rules (the CRD's and the chart's admission policy) have bounded cost. Each is what a real job needs, many times
# over; the operator also refuses a spec whose ConfigMap would pass names.CONFIG_MAP_LIMIT.
MAX_URI, MAX_NAME, MAX_VALUE, MAX_ITEMS = 2048, 256, 16384, 256
Name = Annotated[str, Field(max_length=MAX_NAME)]
Value = Annotated[str, Field(max_length=MAX_VALUE)]
