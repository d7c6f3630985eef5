"""The status-side statistics models (api/statistics.py): structural CRD schemas, every field described, StatusModel
semantics (unknown fields ignored), value bounds."""

from __future__ import annotations

import pydantic
import pytest

from harness.schema import walk
from tfscore.api import crd
from tfscore.api.common import StatusModel
from tfscore.api.statistics import (
    DEFAULT_DRIFT_THRESHOLDS,
    MAX_ELEMENTS,
    Agreement,
    ColumnStatistics,
    Drift,
    DriftMetric,
    PredictionStatistics,
)

MODELS = [PredictionStatistics, ColumnStatistics, Drift, Agreement]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_and_object_is_described_and_structural(model):
    assert issubclass(model, StatusModel)
    undescribed = []
    for path, node in walk(crd.openapi_schema(model)):
        assert "$ref" not in node and "title" not in node and "anyOf" not in node, path
        assert "type" in node, path
        is_object = node.get("type") == "object"
        is_field = not path.endswith("[]") and not path.endswith("{}")
        if (is_object or is_field) and not node.get("description"):
            undescribed.append(path)
    assert not undescribed, undescribed


def test_wire_names_are_camel_case():
    props = crd.openapi_schema(PredictionStatistics)["properties"]
    column = props["columns"]["additionalProperties"]["properties"]
    assert set(column) == {"count", "nulls", "nans", "infinities", "min", "max", "mean", "stddev", "quantiles",
                           "relativeAccuracy"}
    assert column["quantiles"]["additionalProperties"] == {"type": "number"}
    assert set(props["drift"]["additionalProperties"]["properties"]) == {"metric", "value", "reference", "threshold",
                                                                         "exceeded"}
    assert set(props["agreement"]["items"]["properties"]) == {"models", "columns", "correlation",
                                                              "classDisagreement", "rows", "rowsSkipped"}
    assert props["drift"]["additionalProperties"]["properties"]["metric"]["enum"] == ["psi", "ks"]


def test_a_newer_writers_fields_are_ignored():
    stats = PredictionStatistics.model_validate({
        "columns": {"p": {"count": 3, "quantiles": {"p50": 0.5}, "skewness": 0.1}},
        "drift": {"p": {"metric": "ks", "value": 0.2, "reference": "run-1", "exceeded": True, "pValue": 0.01}},
        "future": {"anything": 1},
    })
    assert stats.columns["p"].quantiles == {"p50": 0.5}
    assert stats.drift["p"].metric is DriftMetric.ks
    assert "future" not in stats.to_wire()


@pytest.mark.parametrize("model, data", [
    (ColumnStatistics, {"count": -1}),
    (Drift, {"metric": "wasserstein", "value": 0.1, "reference": "r"}),
    (Drift, {"metric": "psi", "value": -0.1, "reference": "r"}),
    (Agreement, {"models": ["only-one"], "columns": ["p", "p"]}),
    (Agreement, {"models": ["a", "b"], "columns": ["p", "p"], "correlation": 1.5}),
    (Agreement, {"models": ["a", "b"], "columns": ["p", "p"], "classDisagreement": 2}),
])
def test_out_of_range_values_are_refused(model, data):
    with pytest.raises(pydantic.ValidationError):
        model.model_validate(data)


def test_the_element_limit_is_described():
    assert f"up to {MAX_ELEMENTS} values" in ColumnStatistics.__doc__


def test_default_thresholds_are_described():
    description = crd.openapi_schema(Drift)["properties"]["threshold"]["description"]
    assert all(f"{metric} {value}" in description for metric, value in DEFAULT_DRIFT_THRESHOLDS.items())
    assert set(DEFAULT_DRIFT_THRESHOLDS) == {m.value for m in DriftMetric}
