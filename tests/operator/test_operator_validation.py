"""Invalid ScoringJobs: the API server refuses what the CRD schema and its CEL rules can see; the operator's pydantic
models catch the rest and say why in the status (Failed, reason Invalid, the field named), creating nothing."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from harness.common import wait_for
from harness.scoringjobs import Cluster, scoringjob


def refused(k8s: Cluster, body: dict) -> str:
    with pytest.raises(ApiException) as info:
        k8s.create(body)
    assert info.value.status == 422, info.value.body
    return json.loads(info.value.body)["message"]


@pytest.mark.parametrize("spec,field,words", [
    ({"output": {"uri": "s3a://o/", "mode": "replace"}}, "spec.output.mode", "Unsupported value"),
    ({"batchSize": 0}, "spec.batchSize", "should be greater than or equal to 1"),
    ({"executor": {"memory": "lots"}}, "spec.executor.memory", "should match"),
    ({"model": {"uri": "s3a://m/", "version": "newest"}}, "spec.model.version", "should match"),
    ({"backoffLimit": -1}, "spec.backoffLimit", "greater than or equal to 0"),
], ids=["enum", "minimum", "memory-pattern", "version-pattern", "backoff"])
def test_schema_violations_are_refused_by_the_api_server(k8s: Cluster, spec, field, words):
    message = refused(k8s, scoringjob("bad", **spec))
    assert field in message and words in message


def test_missing_required_field_is_refused(k8s: Cluster):
    body = scoringjob("bad")
    del body["spec"]["output"]
    assert "spec.output: Required value" in refused(k8s, body)


def test_cel_quarantine_needs_a_quarantine_uri(k8s: Cluster):
    message = refused(k8s, scoringjob("bad", onInvalidRow="quarantine"))
    assert "quarantineUri is required when onInvalidRow is quarantine" in message


def test_cel_exactly_one_input_source(k8s: Cluster):
    message = refused(k8s, scoringjob("bad", input={"uri": "s3a://in/", "table": "db.t"}))
    assert "exactly one of input.uri or input.table must be set" in message
    message = refused(k8s, scoringjob("bad", input={"table": "db.t", "format": "csv"}))
    assert "input.format must be 'table'" in message


def test_env_entries_are_checked_like_the_models_do(k8s: Cluster):
    assert "spec.env[0].name: Required value" in refused(k8s, scoringjob("bad", env=[{"value": "x"}]))
    both = [{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    message = refused(k8s, scoringjob("bad", env=both))
    assert "spec.env[0].valueFrom" in message and "an env entry takes value or valueFrom, not both" in message


def test_integer_model_version_is_accepted_like_the_models_do(k8s: Cluster):
    k8s.create(scoringjob("v3", model={"uri": "s3a://m/", "version": 3}))
    k8s.wait_pod("v3")
    cm = k8s.core.read_namespaced_config_map("v3-spec-1", k8s.ns)
    assert json.loads(cm.data["job.json"])["spec"]["model"]["version"] == "3"


def test_defaults_are_applied_by_the_api_server(k8s: Cluster):
    spec = k8s.create(scoringjob("defaults"))["spec"]
    assert spec["batchSize"] == 4096 and spec["output"]["mode"] == "errorIfExists"
    assert spec["executor"] == {"cores": 1, "memory": "2g", "instances": 2, "gpu": 0}
    assert "tolerations" not in spec


def test_what_only_the_models_see_fails_the_job_with_the_reason(k8s: Cluster):
    body = scoringjob("overlap", output={"uri": "s3a://o/", "passthrough": ["score"],
                                         "predictions": {"probability": "score"}})
    k8s.create(body)  # the API server cannot see this rule; the operator's models can
    st = k8s.wait_phase("overlap", "Failed")
    cond = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert cond["reason"] == "Invalid"
    assert "output.passthrough and output.predictions both name column(s) ['score']" in cond["message"]
    assert "spec" in st["message"]
    k8s.wait_event("overlap", "Invalid")
    assert not k8s.driver_pods("overlap")
    assert not [c for c in k8s.core.list_namespaced_config_map(k8s.ns).items if c.metadata.name == "overlap-spec-1"]
    # Fixing the spec is judged afresh: the job starts.
    k8s.patch("overlap", {"output": {"passthrough": ["user_id"]}})
    k8s.wait_pod("overlap")
    wait_for("Pending after the fix", lambda: k8s.status("overlap").get("phase") == "Pending")


def test_field_errors_name_the_field(k8s: Cluster):
    k8s.create(scoringjob("cols", input={"uri": "s3a://in/", "columns": {"features": 5}}))
    st = k8s.wait_phase("cols", "Failed")
    assert "spec.input.columns.features" in st["message"]
