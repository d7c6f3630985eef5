"""Render tfscore's CustomResourceDefinitions from the pydantic models (`tfscore crd [--kind K]` → crds/<kind>.yaml).

pydantic emits JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3 schema. The conversion here:
`$ref`s inlined, titles dropped, `X | None` becomes an optional X (the API server drops nulls, pydantic reads absent as
None), enums and defaults kept (empty-collection defaults dropped so stored objects stay small), free-form core/v1 objects
(`dict[str, Any]`: tolerations, env, volumes, …) become `type: object` + `x-kubernetes-preserve-unknown-fields`, and the CEL
`x-kubernetes-validations` attached in the kind modules travel along. Nothing here is hand-written per field: a kind
module that needs more on a nested schema it reuses (ScoringSchedule's template rules inside a ScoringJobSpec) attaches
`x-tfscore-overlay: {dotted.path: {key: value}}` to the field, and the keys are laid over the sub-schemas at those paths
(`x-append-description` appends to the description).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

from tfscore.api import scoringjob, scoringpolicy, scoringschedule
from tfscore.api.common import API_VERSION, GROUP, VERSION

OVERLAY = "x-tfscore-overlay"
_DROP = {"title", "examples", "$defs", "definitions", "$schema", "discriminator", "readOnly", "writeOnly", "deprecated"}

# Key order in the rendered YAML (readability only): what a node is first, its children last.
_ORDER = {k: i for i, k in enumerate([
    "type", "format", "description", "enum", "default", "x-kubernetes-int-or-string", "anyOf", "pattern", "minLength",
    "maxLength", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minItems", "maxItems", "required",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-validations", "properties", "items", "additionalProperties",
])}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Pending, Queued, Running, "
                                                                                      "Succeeded, Failed or Suspended."},
    {"name": "Progress", "type": "integer", "jsonPath": ".status.progress.percent", "description": "Percent of tasks "
                                                                                                     "done."},
    {"name": "Rows", "type": "integer", "jsonPath": ".status.progress.rowsScored", "description": "Rows scored."},
    {"name": "Model", "type": "string", "jsonPath": ".status.modelSummary", "description": "The model's uri (the "
                                                                                       "first's, +N more)."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Version", "type": "string", "jsonPath": ".status.model.version", "priority": 1,
     "description": "Model version actually scored with."},
    {"name": "Attempts", "type": "integer", "jsonPath": ".status.attempts", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
]


def _is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null"


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """One JSON-Schema node → one structural OpenAPI v3 node (recursive)."""
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    overlay = node.pop(OVERLAY, None)
    ref = node.pop("$ref", None)
    if ref is not None:  # inline; keys beside the $ref (description, default, validations) win
        node = {**copy.deepcopy(defs[ref.rsplit("/", 1)[-1]]), **node}
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if branches is None:
            continue
        present = [b for b in branches if not _is_null(b)]
        if len(present) == 1:  # Optional[X]: X, absent when None (X converted once, below, with this node)
            del node[key]
            inner = dict(present[0])
            ref = inner.pop("$ref", None)
            if ref is not None:
                inner = {**copy.deepcopy(defs[ref.rsplit("/", 1)[-1]]), **inner}
            merged = {**inner, **{k: v for k, v in node.items() if k != "default"}}
            if node.get("default") is not None:
                merged["default"] = node["default"]
            node = merged
        else:  # a real union (e.g. str | list[str]): structural schemas cannot type it; pydantic checks it
            node = {k: v for k, v in node.items() if k in ("description",)}
            node["x-kubernetes-preserve-unknown-fields"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("x-kubernetes-int-or-string"):  # the one union structural schemas allow; value checks stay outside
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    extra = node.pop("additionalProperties", None)
    if extra is True or extra == {}:
        node["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict) and "properties" not in node:
        node["additionalProperties"] = _structural(extra, defs)
    if "exclusiveMinimum" in node and not isinstance(node["exclusiveMinimum"], bool):
        node["minimum"], node["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "exclusiveMaximum" in node and not isinstance(node["exclusiveMaximum"], bool):
        node["maximum"], node["exclusiveMaximum"] = node["exclusiveMaximum"], True
    node.pop("uniqueItems", None)  # not allowed in CRDs; list-type set is the k8s spelling when it matters
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs)
        else:
            out[key] = value
    _fix_default(out)
    if overlay:
        _lay_over(out, overlay)
    return dict(sorted(out.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER))))


def _lay_over(node: dict[str, Any], overlay: dict[str, dict[str, Any]]) -> None:
    for path, extra in overlay.items():
        target = node
        for part in path.split("."):
            target = target["properties"][part]  # a KeyError here is a wrong path in a kind module: fail the build
        for key, value in extra.items():
            if key == "x-append-description":
                target["description"] = target.get("description", "") + value
            else:
                target[key] = copy.deepcopy(value)
        ordered = sorted(target.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER)))
        target.clear()
        target.update(ordered)


def _fix_default(node: dict[str, Any]) -> None:
    if "default" not in node:
        return
    default = _strip_nulls(node["default"])
    if default is None or default == [] or (default == {} and "properties" not in node):
        del node["default"]  # absent means empty; keep stored objects small
        return
    props = node.get("properties")
    if isinstance(default, dict) and props is not None:
        # A model default equal to its fields' defaults: `{}` lets the API server fill each field in from its own.
        if all(props.get(k, {}).get("default") == v for k, v in default.items()):
            default = {}
    node["default"] = default


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one pydantic model (wire names)."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(schema, schema.get("$defs", {}))


POLICY_COLUMNS: list[dict[str, Any]] = [
    {"name": "SparkConf", "type": "string", "jsonPath": ".spec.sparkConf.mode", "description": "denylist or allowlist."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# kind → (module with PLURAL/SINGULAR/SHORT_NAMES, spec model, status model or None, description, printer columns)
KINDS: dict[str, tuple[Any, type[BaseModel], type[BaseModel] | None, str, list[dict[str, Any]]]] = {
    scoringjob.KIND: (scoringjob, scoringjob.ScoringJobSpec, scoringjob.ScoringJobStatus,
                      "A batch-inference run: a TensorFlow SavedModel scored over a dataset by Spark on Kubernetes.",
                      PRINTER_COLUMNS),
    scoringschedule.KIND: (scoringschedule, scoringschedule.ScoringScheduleSpec,
                           scoringschedule.ScoringScheduleStatus, scoringschedule.DESCRIPTION,
                           scoringschedule.PRINTER_COLUMNS),
    scoringpolicy.KIND: (scoringpolicy, scoringpolicy.ScoringPolicySpec, None, scoringpolicy.DESCRIPTION,
                         POLICY_COLUMNS),
}


def kind_named(name: str) -> str:
    """The kind for a kind, plural, singular or short name in any case (`tfscore crd --kind ss`)."""
    for kind, (module, *_rest) in KINDS.items():
        if name.lower() in {kind.lower(), module.PLURAL, module.SINGULAR, *module.SHORT_NAMES}:
            return kind
    raise ValueError(f"--kind: unknown kind {name!r} (use {', '.join(KINDS)})")


def crd(kind: str = scoringjob.KIND) -> dict[str, Any]:
    """The whole CustomResourceDefinition object of one kind."""
    module, spec, status, description, columns = KINDS[kind]
    properties = {
        "apiVersion": {"type": "string", "description": API_VERSION},
        "kind": {"type": "string", "description": kind},
        "metadata": {"type": "object"},  # the API server allows nothing else here
        "spec": openapi_schema(spec),
    }
    if status is not None:
        properties["status"] = openapi_schema(status)
    root = {"type": "object", "description": description, "required": ["spec"], "properties": properties}
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if status is not None:
        version["subresources"] = {"status": {}}
    version.update({"additionalPrinterColumns": columns, "schema": {"openAPIV3Schema": root}})
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{module.PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "tfscore", "app.kubernetes.io/component": "crd"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": module.PLURAL,
                "singular": module.SINGULAR,
                "shortNames": list(module.SHORT_NAMES),
                "categories": ["tfscore"],
            },
            "versions": [version],
        },
    }


def render_yaml(kind: str = scoringjob.KIND) -> str:
    source = KINDS[kind][0].__name__.replace(".", "/")
    header = f"# Generated by `tfscore crd` (make crd) from operator/{source}.py. Do not edit by hand.\n"
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=120, allow_unicode=True)
