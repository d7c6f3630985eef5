"""The ScoringSchedule kind: its model (defaults, every refusal naming the field), its generated CRD (drift-tested against
crds/scoringschedule.yaml, structural, described), and the Python rules agreeing with the CEL ones."""

from __future__ import annotations

import pytest
import yaml

from harness.common import ROOT
from harness.schema import walk
from tfscore.api import crd, scoringjob, scoringschedule
from tfscore.api.manifest import ManifestError, load_any, parse
from tfscore.api.schedule_template import template_rule
from tfscore.api.schedule_time import SCHEDULE_RULE, TIME_ZONE_RULE
from tfscore.api.scoringjob import ScoringJob
from tfscore.api.scoringschedule import ScoringSchedule

TEMPLATE = {"model": {"uri": "s3a://m/"}, "input": {"uri": "s3a://in/dt=${scheduledTime:%Y-%m-%d}/"},
            "output": {"uri": "s3a://out/"}}


def doc(**spec) -> dict:
    template = spec.pop("template", {})
    return {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringSchedule", "metadata": {"name": "hourly"},
            "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {**TEMPLATE, **template}}, **spec}}


def refusal(**spec) -> str:
    with pytest.raises(ManifestError) as info:
        parse(doc(**spec), "s.yaml", ScoringSchedule)
    return str(info.value)


def test_defaults_are_cronjobs():
    s = parse(doc(), "s.yaml", ScoringSchedule).spec
    assert (s.time_zone, s.concurrency_policy, s.starting_deadline_seconds, s.successful_runs_history_limit,
            s.failed_runs_history_limit, s.suspend, s.drift_policy) == ("UTC", "Allow", None, 3, 1, False, None)
    assert s.incremental_key is None


@pytest.mark.parametrize("spec,needle", [
    ({"schedule": "61 * * * *"}, "spec.schedule: minute field '61' is not valid"),
    ({"schedule": "TZ=UTC 0 * * * *"}, "spec.schedule: TZ= and CRON_TZ= prefixes are not allowed"),
    ({"timeZone": "Mars/Olympus"}, "spec.timeZone: unknown time zone Mars/Olympus"),
    ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy"),
    ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds"),
    ({"template": {"input": {"uri": "s3a://in/", "incremental": {"partitionKey": "dt"}}}},
     "jobTemplate.spec.input.incremental needs concurrencyPolicy Forbid or Replace"),
    ({"driftPolicy": {"action": "fail"}, "template": {"drift": {"referenceUri": "s3a://ref/"}}},
     "set driftPolicy or jobTemplate.spec.drift, not both"),
    ({"driftPolicy": {"action": "explode"}}, "spec.driftPolicy.action"),
    ({"template": {"output": {"uri": "s3a://out/${when}/"}}}, "spec.jobTemplate.spec.output.uri: '${when}' is not a "
                                                               "valid reference"),
    ({"template": {"input": {"uri": "s3a://in/", "where": "h = '${scheduledTime:%Q}'"}}},
     "spec.jobTemplate.spec.input.where: '${scheduledTime:%Q}'"),
    ({"template": {"input": {"uri": "s3a://in/", "where": "x" * 8193}}},
     "spec.jobTemplate.spec.input.where: longer than 8192 characters"),
    ({"template": {"quarantineUri": "q/" + "x" * 2048, "onInvalidRow": "quarantine"}},
     "spec.jobTemplate.spec.quarantineUri: String should have at most 2048 characters"),
    ({"template": {"input": {"table": "db.t", "incremental": {"partitionKey": "dt"}}}, "concurrencyPolicy": "Forbid"},
     "input.incremental needs input.uri"),
    ({"template": {"output": {}}}, "spec.jobTemplate.spec.output.uri: Field required"),
])
def test_refusals_name_the_field(spec, needle):
    assert needle in refusal(**spec)


def test_incremental_with_forbid_or_replace():
    for policy in ("Forbid", "Replace"):
        s = parse(doc(concurrencyPolicy=policy, template={"input": {"uri": "s3a://in/", "incremental": {
            "partitionKey": "dt", "until": "${scheduledTime-1h:%Y-%m-%d}"}}}), "s", ScoringSchedule).spec
        assert s.incremental_key == "dt"


def test_load_any_tells_the_kinds_apart(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc()))
    (tmp_path / "j.yaml").write_text(yaml.safe_dump({**doc(), "kind": "ScoringJob", "spec": TEMPLATE}))
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({**doc(), "kind": "CronJob"}))
    assert isinstance(load_any(tmp_path / "s.yaml"), ScoringSchedule)
    assert isinstance(load_any(tmp_path / "j.yaml"), ScoringJob)
    with pytest.raises(ManifestError, match="kind ScoringJob or ScoringSchedule, got 'tfscore.io/v1alpha1' / 'CronJob'"):
        load_any(tmp_path / "x.yaml")


# ---------------------------------------------------------------- the CRD


@pytest.fixture(scope="module")
def rendered() -> dict:
    return crd.crd(scoringschedule.KIND)


@pytest.fixture(scope="module")
def spec_schema(rendered) -> dict:
    return rendered["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_checked_in_crd_matches_the_models():
    checked_in = (ROOT / "crds" / "scoringschedule.yaml").read_text()
    assert checked_in == crd.render_yaml(scoringschedule.KIND), \
        "crds/scoringschedule.yaml drifted from the models: run `make crd`"
    assert (ROOT / "charts" / "tfscore" / "crds" / "scoringschedule.yaml").read_text() == checked_in


def test_names_columns_and_subresources(rendered):
    spec = rendered["spec"]
    assert rendered["metadata"]["name"] == "scoringschedules.tfscore.io"
    assert spec["names"]["shortNames"] == ["ss"] and spec["names"]["plural"] == "scoringschedules"
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["SCHEDULE", "SUSPEND", "ACTIVE", "LAST RUN", "LAST RESULT", "NEXT RUN", "AGE"]


def test_every_field_is_described_and_the_schema_structural(rendered):
    undescribed = []
    for path, node in walk(rendered["spec"]["versions"][0]["schema"]["openAPIV3Schema"]):
        assert "$ref" not in node and "title" not in node, path
        assert "anyOf" not in node or node.get("x-kubernetes-int-or-string"), path
        if path != "$.metadata" and not path.endswith(("[]", "{}")) and not node.get("description"):
            undescribed.append(path)
    assert not undescribed, undescribed


def test_cel_rules_are_the_models_rules(spec_schema):
    props = spec_schema["properties"]
    assert spec_schema["x-kubernetes-validations"] == [scoringschedule.INCREMENTAL_RULE, scoringschedule.DRIFT_RULE]
    assert props["schedule"]["x-kubernetes-validations"] == [SCHEDULE_RULE] and props["schedule"]["maxLength"] == 256
    assert props["timeZone"]["x-kubernetes-validations"] == [TIME_ZONE_RULE] and props["timeZone"]["default"] == "UTC"
    template = props["jobTemplate"]["properties"]["spec"]
    for path, limit in scoringschedule.TEMPLATED.items():
        node = template
        for part in path.split("."):
            node = node["properties"][part]
        assert node["maxLength"] == limit, path
        assert node["x-kubernetes-validations"] == [template_rule(f"spec.jobTemplate.spec.{path}")], path
        assert "${scheduledTime" in node["description"], path
    # the embedded ScoringJob spec keeps its own rules
    assert template["x-kubernetes-validations"][0]["rule"].startswith("self.onInvalidRow")


def test_the_scoringjob_crd_has_no_template_rules():
    job = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "x-kubernetes-validations" not in job["properties"]["input"]["properties"]["uri"]
    # the job's own bounds, not the template's overlay
    assert job["properties"]["output"]["properties"]["uri"]["maxLength"] == scoringjob.MAX_URI
    assert job["properties"]["input"]["properties"]["where"]["maxLength"] == scoringjob.MAX_VALUE
