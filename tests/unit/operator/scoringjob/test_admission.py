"""The chart's ValidatingAdmissionPolicies are generated from the policy modules: the checked-in file matches, the CEL
rules are the Python rules (same names, same order), and what the CEL refers to exists. The chart tier sends the
attacks through the real API server and compares the messages."""

from __future__ import annotations

import re

import yaml

from harness.common import ROOT
from tfscore.operator.scoringjob import admission, isolation, policy, policy_cel

GENERATED = ROOT / "charts" / "tfscore" / "files" / "admission-policies.yaml"


def test_checked_in_admission_policies_match_the_rules():
    assert GENERATED.read_text() == admission.render_yaml(), \
        "charts/tfscore/files/admission-policies.yaml drifted from the policy modules: run `make crd`"
    assert yaml.safe_load(GENERATED.read_text()) == {"scoringJobs": admission.scoringjob_policy(),
                                                     "driver": admission.driver_policy()}


def test_one_cel_rule_per_python_rule_in_the_same_order():
    assert list(policy_cel.CEL) == [name for name, _ in policy.CHECKS]
    validations = admission.scoringjob_policy()["validations"]
    assert len(validations) == len(policy.CHECKS) + policy.MAX_REFERENCES
    assert all(v["reason"] == "Invalid" and v["messageExpression"] for v in validations)


def _referenced(expressions: list[str]) -> set[str]:
    return {m for e in expressions for m in re.findall(r"variables\.([A-Za-z]+)", e)}


def test_every_variable_used_is_defined_before_use():
    for spec, given in ((admission.scoringjob_policy(), admission.SCORINGJOB_CHART_VARIABLES),
                        (admission.driver_policy(), admission.CHART_VARIABLES)):
        defined: list[str] = list(given)  # the driver policy's first variables come from the chart's values
        for var in spec["variables"]:
            assert _referenced([var["expression"]]) <= set(defined), var["name"]
            defined.append(var["name"])
        used = _referenced([e for v in spec["validations"] for e in (v["expression"], v["messageExpression"])])
        assert used <= set(defined), used - set(defined)


def test_the_operators_own_names_are_literals_in_the_policy():
    variables = {v["name"]: v["expression"] for v in admission.scoringjob_policy()["variables"]}
    for key in isolation.OPERATOR_SPARK_KEYS:
        assert f"'{key}'" in variables["reservedKeys"], key
    for name in isolation.OPERATOR_ENV:
        assert f"'{name}'" in variables["operatorEnv"], name
    for path in isolation.OPERATOR_PATHS:
        assert f"'{path}'" in variables["operatorPaths"], path


def test_only_the_reference_rules_call_the_authorizer():
    """Each authorizer check costs ~350k of CEL's 1M per expression: one check per validation, at most 8."""
    validations = admission.scoringjob_policy()["validations"]
    with_authz = [v for v in validations if "authorizer" in v["expression"]]
    assert len(with_authz) == policy.MAX_REFERENCES
    assert all(v["expression"].count("authorizer") == 1 for v in with_authz)
    assert not any("authorizer" in v["expression"] for v in admission.scoringjob_policy()["variables"])


def test_the_driver_policy_covers_pods_only_and_every_write():
    rules = admission.driver_policy()["matchConstraints"]["resourceRules"]
    assert rules == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE", "DELETE"],
                      "resources": ["pods"]}]
    assert admission.driver_policy()["failurePolicy"] == "Fail"
    assert "paramKind" not in admission.driver_policy(), "a parameter lookup would refuse every pod write where the " \
        "ScoringPolicy is missing: the API server resolves it before matchConditions"
