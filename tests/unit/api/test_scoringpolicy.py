"""The ScoringPolicy kind: its CRD is generated and checked in, its defaults are the chart's, and a bad pattern is
refused (the admission policy's glob → regex translation relies on the pattern syntax)."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from harness.common import ROOT
from tfscore.api import crd, scoringpolicy
from tfscore.api.scoringpolicy import ScoringPolicySpec


def test_checked_in_crd_matches_the_model():
    assert (ROOT / "crds" / "scoringpolicy.yaml").read_text() == crd.render_yaml(scoringpolicy.KIND), \
        "crds/scoringpolicy.yaml drifted from the models: run `make crd`"
    assert (ROOT / "charts" / "tfscore" / "crds" / "scoringpolicy.yaml").resolve() == \
        (ROOT / "crds" / "scoringpolicy.yaml").resolve()


def test_crd_shape():
    rendered = crd.crd(scoringpolicy.KIND)
    version = rendered["spec"]["versions"][0]
    assert rendered["metadata"]["name"] == "scoringpolicies.tfscore.io"
    assert "subresources" not in version, "no status: a policy is only read"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["sparkConf"]["properties"]["deny"]["default"] == list(scoringpolicy.DEFAULT_SPARK_DENY)
    assert all(p.get("maxItems") for p in (spec["properties"]["images"], spec["properties"]["mountPaths"]))


def test_the_charts_defaults_are_the_models():
    """values.yaml holds the admin's copy of the defaults (with the reasons as comments): it must equal the model's."""
    values = yaml.safe_load((ROOT / "charts" / "tfscore" / "values.yaml").read_text())["policy"]
    default = ScoringPolicySpec().to_wire()
    assert values["sparkConf"]["deny"] == default["sparkConf"]["deny"]
    assert values["sparkConf"]["mode"] == default["sparkConf"]["mode"] and values["sparkConf"]["allow"] == []
    assert values["env"]["reserved"] == default["env"]["reserved"]
    assert values["env"]["envFromWithoutPrefix"] is default["env"]["envFromWithoutPrefix"]
    assert values["volumeTypes"] == default["volumeTypes"] and values["mountPaths"] == default["mountPaths"]


def test_every_deny_pattern_has_a_reason():
    assert all(reason.strip() for reason in scoringpolicy.DEFAULT_SPARK_DENY.values())


@pytest.mark.parametrize("field,value", [
    ("sparkConf", {"deny": ["spark.(x|y)"]}), ("env", {"reserved": ["A*B"]}), ("mountPaths", ["data"]),
    ("mountPaths", ["/data/"]), ("images", ["UPPER/case"]), ("sparkConf", {"mode": "maybe"}),
])
def test_bad_entries_are_refused(field, value):
    with pytest.raises(ValidationError):
        ScoringPolicySpec.model_validate({field: value})
