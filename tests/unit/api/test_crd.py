"""The CRD is generated from the pydantic models, is structural, and matches the checked-in crds/scoringjob.yaml."""

from __future__ import annotations

import pytest
import yaml

from harness.common import ROOT
from harness.schema import walk
from tfscore.api import common, crd, scoringjob


@pytest.fixture(scope="module")
def rendered() -> dict:
    return crd.crd()


@pytest.fixture(scope="module")
def schema(rendered) -> dict:
    return rendered["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_checked_in_crd_matches_the_models():
    checked_in = (ROOT / "crds" / "scoringjob.yaml").read_text()
    assert checked_in == crd.render_yaml(), "crds/scoringjob.yaml drifted from the models: run `make crd`"


def test_names_scope_and_subresources(rendered):
    spec = rendered["spec"]
    assert rendered["metadata"]["name"] == "scoringjobs.tfscore.io"
    assert spec["group"] == common.GROUP and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "ScoringJob" and spec["names"]["plural"] == "scoringjobs"
    assert spec["names"]["shortNames"] == ["sj"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["PHASE", "PROGRESS", "ROWS", "MODEL", "AGE"]


def test_schema_is_structural(schema):
    for path, node in walk(schema):
        assert "$ref" not in node and "title" not in node and "const" not in node, path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node and node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert "anyOf" not in node and "oneOf" not in node, path
            assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        if "default" in node:
            assert None not in (node["default"] if isinstance(node["default"], list) else [node["default"]]), path


def test_free_form_kubernetes_objects_keep_their_fields(schema):
    spec = schema["properties"]["spec"]["properties"]
    for field in ("tolerations", "envFrom", "volumes", "volumeMounts"):
        assert spec[field]["type"] == "array", field
        items = dict(spec[field]["items"])
        assert items.pop("description").startswith("A core/v1 "), field  # described, and otherwise free-form
        assert items == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}, field


def test_env_entries_are_typed_with_a_free_form_value_from(schema):
    env = schema["properties"]["spec"]["properties"]["env"]["items"]
    assert env["required"] == ["name"] and set(env["properties"]) == {"name", "value", "valueFrom"}
    assert env["properties"]["valueFrom"] == {"type": "object", "description": env["properties"]["valueFrom"]["description"],
                                              "x-kubernetes-preserve-unknown-fields": True}
    assert [r["rule"] for r in env["x-kubernetes-validations"]] == ["!has(self.value) || !has(self.valueFrom)"]


def test_optional_fields_are_not_required_and_have_no_null_default(schema):
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["input", "output"]  # model, or models (a CEL rule: exactly one)
    deadline = spec["properties"]["activeDeadlineSeconds"]
    assert deadline == {"type": "integer", "description": deadline["description"], "minimum": 1}


def test_enums_defaults_and_descriptions(schema):
    spec = schema["properties"]["spec"]["properties"]
    assert spec["output"]["properties"]["mode"]["enum"] == ["errorIfExists", "overwrite", "append"]
    assert spec["output"]["properties"]["mode"]["default"] == "errorIfExists"
    assert spec["onInvalidRow"]["enum"] == ["fail", "quarantine"]
    assert spec["batchSize"]["default"] == 4096 and spec["backoffLimit"]["default"] == 2
    assert spec["executor"]["default"] == {} and spec["executor"]["properties"]["instances"]["default"] == 2
    assert "default" not in spec["tolerations"], "empty-list defaults would bloat every stored object"
    assert spec["model"]["properties"]["version"]["x-kubernetes-int-or-string"] is True
    assert all(spec[f].get("description") for f in ("image", "suspend", "startupTimeoutSeconds"))


def test_defaults_agree_with_the_models(schema):
    """Every scalar default the API server applies is the default pydantic applies."""
    defaults = scoringjob.ScoringJobSpec.model_validate(
        {"model": {"uri": "m"}, "input": {"uri": "i"}, "output": {"uri": "o"}}).to_wire()
    for path, node in walk(schema["properties"]["spec"]):
        if "default" not in node or node["default"] == {}:
            continue
        value = defaults
        for part in path.removeprefix("$.").split("."):
            value = value[part] if isinstance(value, dict) and part in value else None
        if value is not None:
            assert value == node["default"], path


def test_cel_rules_are_the_models_rules(schema):
    spec = schema["properties"]["spec"]
    assert spec["x-kubernetes-validations"] == [scoringjob.QUARANTINE_RULE, scoringjob.MODELS_RULE,
                                                scoringjob.PREDICTIONS_RULE]
    assert spec["properties"]["input"]["x-kubernetes-validations"] == [scoringjob.INPUT_SOURCE_RULE,
                                                                       scoringjob.TABLE_FORMAT_RULE]


def test_status_schema_comes_from_the_status_model(schema):
    status = schema["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == ["Pending", "Queued", "Running", "Succeeded", "Failed", "Suspended"]
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert status["conditions"]["items"]["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert set(status["result"]["properties"]) >= {"rowsIn", "rowsOut", "rowsQuarantined", "seconds",
                                                   "rowsPerSecond", "outputUri", "model"}
    assert set(status["progress"]["properties"]) == {"rowsScored", "tasksDone", "tasksTotal", "percent"}


def test_render_yaml_is_loadable():
    assert yaml.safe_load(crd.render_yaml())["kind"] == "CustomResourceDefinition"


def test_every_field_and_object_is_described(schema):
    """`kubectl explain scoringjob.spec…` has words for every field and every object (the models' docstrings)."""
    undescribed = []
    for path, node in walk(schema):
        is_object = node.get("type") == "object" or "properties" in node
        is_field = not path.endswith("[]") and not path.endswith("{}")
        if path == "$.metadata":  # the API server refuses anything but `type: object` there
            continue
        if (is_object or is_field) and not node.get("description"):
            undescribed.append(path)
    assert not undescribed, undescribed


def test_size_bounds_come_from_the_models(schema):
    """maxLength / maxProperties / maxItems: the API server refuses an oversized spec, and CEL costs stay bounded."""
    spec = schema["properties"]["spec"]["properties"]
    assert spec["sparkConf"]["maxProperties"] == 256 and spec["sparkConf"]["additionalProperties"]["maxLength"] == 16384
    assert spec["model"]["properties"]["uri"]["maxLength"] == 2048
    assert spec["output"]["properties"]["uri"]["maxLength"] == 2048
    for field, limit in (("env", 256), ("envFrom", 32), ("volumes", 64), ("volumeMounts", 64), ("tolerations", 64)):
        assert spec[field]["maxItems"] == limit, field
    assert spec["env"]["items"]["properties"]["value"]["maxLength"] == 16384
    assert spec["image"]["maxLength"] == 512
