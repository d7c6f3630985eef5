"""The ScoringPolicy's rules as the operator checks them: every attack refused with the field named, every example and
end-to-end job accepted, and what an admin can open (per namespace) and what stays closed whatever the policy says."""

from __future__ import annotations

import copy

import pytest
import yaml

from harness.attacks import ATTACKS, ISSUE_FIRST, ISSUE_SPEC, oversized_conf
from harness.common import ROOT
from tfscore.api import common, scoringjob
from tfscore.api.scoringjob import ScoringJob
from tfscore.api.scoringpolicy import ScoringPolicySpec, default_spec
from tfscore.operator.config import OperatorConfig
from tfscore.operator.scoringjob import isolation, policy

IMAGE = "localhost/tfscore/runtime@sha256:" + "0" * 64
POLICY = default_spec([IMAGE], ["tfscore-driver"])
BASE = {"model": {"uri": "s3a://models/risk/"}, "input": {"uri": "s3a://in/"}, "output": {"uri": "s3a://out/"}}
BODY = {"metadata": {"name": "j", "namespace": "ns", "uid": "uid-1"}}


def job(**spec) -> ScoringJob:
    merged = {k: v for k, v in {**BASE, **spec}.items() if v is not None}  # None: drop a base field
    return ScoringJob.model_validate({"apiVersion": common.API_VERSION, "kind": scoringjob.KIND,
                                      "metadata": {"name": "j", "namespace": "ns"}, "spec": merged})


def first(spec: dict, pol: ScoringPolicySpec = POLICY) -> str | None:
    found = policy.violations(job(**spec).spec, pol)
    return found[0] if found else None


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_every_attack_is_refused_naming_the_field(attack):
    spec, expected = ATTACKS[attack]
    message = first(spec)
    assert message is not None and expected in message, message


def test_the_issue_manifest_is_refused_on_every_count():
    found = policy.violations(job(**ISSUE_SPEC).spec, POLICY)
    assert found[0].startswith(ISSUE_FIRST)
    for field in ("spec.serviceAccountName", 'spec.sparkConf["spark.kubernetes.executor.podTemplateFile"]',
                  "spec.volumes[0]: volume type hostPath", "spec.input.uri: file:///var/run"):
        assert any(line.startswith(field) for line in found), (field, found)


@pytest.mark.parametrize("path", ["examples/e2e-job.yaml"])
def test_the_examples_pass(path):
    doc = next(d for d in yaml.safe_load_all((ROOT / path).read_text()) if d and d["kind"] == "ScoringJob")
    assert policy.violations(ScoringJob.model_validate(doc).spec, POLICY) == []


def test_a_clean_job_and_the_usual_knobs_pass():
    assert first({}) is None
    assert first({"image": IMAGE, "serviceAccountName": "tfscore-driver", "executor": {"gpu": 1},
                  "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                  "sparkConf": {"spark.sql.shuffle.partitions": "64", "spark.kubernetes.executor.request.cores": "250m",
                                "spark.hadoop.fs.s3a.endpoint": "http://s3:9000", "spark.tfscore.splitRows": "5000"},
                  "env": [{"name": "AWS_REGION", "value": "eu-west-1"}, {"name": "X", "value": "$(POD_NAME)"}],
                  "envFrom": [{"prefix": "AWS_", "secretRef": {"name": "s3"}}],
                  **copy.deepcopy(ATTACKS["dot-dot-path"][0] | {"model": {"uri": "file:///data/models/risk"}}),
                  "input": {"uri": "/data/in/", "options": {"header": "true"}},
                  "output": {"uri": "local:///data/out"}}) is None


@pytest.mark.parametrize("image,entry,allowed", [
    ("r/x@sha256:" + "a" * 64, "r/x", True),                      # a repository: any digest in it
    ("r/x:1.0", "r/x", False),                                  # … but not a tag
    ("r/x@sha256:" + "a" * 63, "r/x", False),
    ("r/xy@sha256:" + "a" * 64, "r/x", False),                  # not a prefix match
    ("reg:5000/ml/x@sha256:" + "b" * 64, "reg:5000/ml/*", True),  # a prefix, digest required
    ("reg:5000/ml/team/x@sha256:" + "b" * 64, "reg:5000/ml/*", True),
    ("reg:5000/ml/x:latest", "reg:5000/ml/*", False),
    ("r/x:1.0", "r/x:1.0", True),                               # an exact reference, as the admin wrote it
    ("r/x:1.0", "r/x:2.0", False),
])
def test_image_entries(image, entry, allowed):
    assert policy.image_allowed(image, entry) is allowed


def test_an_admin_opens_a_key_an_image_and_an_env_name_for_one_team():
    team = POLICY.model_copy(deep=True)
    team.images.append("registry.example.com/team-a/*")
    team.spark_conf.allow.append("spark.sql.catalog.*")
    team.env.allow.append("TF_CPP_MIN_LOG_LEVEL")
    team.service_accounts.append("team-a-driver")
    spec = {"image": "registry.example.com/team-a/rt@sha256:" + "c" * 64, "serviceAccountName": "team-a-driver",
            "sparkConf": {"spark.sql.catalog.lake": "org.apache.iceberg.spark.SparkCatalog"},
            "env": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "3"}]}
    assert first(spec) is not None and first(spec, team) is None
    # What the operator sets stays reserved whatever the policy allows.
    team.spark_conf.allow.append("*")
    team.env.allow.append("*")
    assert first({"sparkConf": {"spark.master": "local"}}, team).endswith("reserved: the operator sets this key")
    assert first({"env": [{"name": "POD_NAME", "value": "x"}]}, team) == "spec.env[0].name: POD_NAME is set by the operator"


def test_allowlist_mode():
    strict = POLICY.model_copy(deep=True)
    strict.spark_conf.mode = "allowlist"
    strict.spark_conf.allow = ["spark.sql.shuffle.partitions"]
    assert first({"sparkConf": {"spark.sql.shuffle.partitions": "8"}}, strict) is None
    assert first({"sparkConf": {"spark.sql.adaptive.enabled": "true"}}, strict) == \
        'spec.sparkConf["spark.sql.adaptive.enabled"]: not among the ScoringPolicy\'s allowed keys'


def test_the_first_offence_is_the_smallest_key_and_index():
    assert first({"sparkConf": {"spark.ssl.enabled": "x", "spark.jars": "y"}}) == \
        'spec.sparkConf["spark.jars"]: denied by the ScoringPolicy (pattern spark.jars); ask the platform admin to ' \
        'allow it'
    assert first({"env": [{"name": "OK", "value": "1"}, {"name": "HOME", "value": "/"},
                          {"name": "PATH", "value": "/"}]}).startswith("spec.env[1].name: HOME")


def test_env_from_without_prefix_can_be_opened():
    open_ = POLICY.model_copy(deep=True)
    open_.env.env_from_without_prefix = True
    assert first(ATTACKS["env-from-unprefixed"][0], open_) is None


@pytest.mark.parametrize("prefix,conflict", [("APP_", None), ("AWS_", None), ("K", "KUBERNETES_*"),
                                             ("SPARK_X_", "SPARK_*"), ("HOM", "HOME"), ("P", "POD_NAME")])
def test_env_from_prefix_conflicts(prefix, conflict):
    assert policy.prefix_conflict(prefix, POLICY) == conflict


@pytest.mark.parametrize("path,ok", [("/data", True), ("/data/", True), ("/data/x", True), ("/mnt/a/b", True),
                                     ("/datax", False), ("/", False), ("/data//x", False), ("/data/./x", False),
                                     ("relative", False), ("/tmp/x", False), ("/etc/tfscore", False),
                                     ("/etc", False)])
def test_mount_paths(path, ok):
    assert policy.mount_allowed(path, POLICY) is ok


def test_operator_paths_stay_closed_even_when_an_admin_opens_everything():
    anywhere = POLICY.model_copy(update={"mount_paths": ["/"]})
    for path in isolation.OPERATOR_PATHS:
        assert not policy.mount_allowed(path, anywhere), path
    assert not policy.mount_allowed("/etc", anywhere), "above /etc/tfscore: would shadow it"
    assert policy.mount_allowed("/srv/data", anywhere)


@pytest.mark.parametrize("uri,path", [("file:///a", "/a"), ("FILE:/a", "/a"), ("local:///a", "/a"), ("/a", "/a"),
                                      ("a/b", "a/b"), ("s3a://b/k", None), ("hdfs://nn/x", None)])
def test_local_path(uri, path):
    assert policy.local_path(uri) == path


def test_references_are_counted_in_the_admission_policys_order():
    spec = job(volumes=[{"name": "a", "secret": {"secretName": "s1"}}, {"name": "b", "configMap": {"name": "c1"}},
                        {"name": "p", "projected": {"sources": [{"secret": {"name": "s2"}},
                                                                {"configMap": {"name": "c2"}}]}}],
               env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "k"}}}],
               envFrom=[{"prefix": "A_", "configMapRef": {"name": "c3"}}]).spec
    assert policy.references(spec) == ["secrets/s1", "configmaps/c1", "secrets/s2", "configmaps/c2", "secrets/s3",
                                       "configmaps/c3"]


def test_a_spec_whose_config_map_would_pass_900_kib_is_invalid():
    config = OperatorConfig(runtime_image=IMAGE)
    big = job(sparkConf=oversized_conf())
    message = policy.admit(big, BODY, POLICY, config)
    assert message is not None and message.startswith("spec: the job's ConfigMap would be ")
    assert "over the 900 KiB limit" in message
    assert policy.admit(job(sparkConf=oversized_conf(entries=40)), BODY, POLICY, config) is None


def test_the_glob_is_anchored_and_literal():
    assert policy.glob("spark.jars").match("spark.jars") and not policy.glob("spark.jars").match("spark.jarsX")
    assert not policy.glob("spark.jars").match("sparkXjars"), "a dot is a dot"
    assert policy.glob("*.extraJavaOptions").match("spark.executor.extraJavaOptions")
    assert not policy.glob("spark.master").match("spark.master\n")
