"""What keeps one job from another, built purely: the auth Secret, the NetworkPolicy, the reserved names, the digests."""

from __future__ import annotations

import base64

from tfscore.api import common, scoringjob
from tfscore.api.scoringjob import ScoringJob
from tfscore.operator.config import OperatorConfig
from tfscore.operator.scoringjob import builders, isolation, names

BODY = {"apiVersion": common.API_VERSION, "kind": scoringjob.KIND,
        "metadata": {"name": "risk", "namespace": "scoring", "uid": "uid-1"}}
CONFIG = OperatorConfig(runtime_image="r@sha256:" + "a" * 64)


def job(**spec) -> ScoringJob:
    base = {"model": {"uri": "s3a://m/"}, "input": {"uri": "s3a://i/"}, "output": {"uri": "s3a://o/"}}
    return ScoringJob.model_validate({"apiVersion": common.API_VERSION, "kind": scoringjob.KIND,
                                      "metadata": {"name": "risk", "namespace": "scoring"}, "spec": {**base, **spec}})


def test_every_key_the_operator_sets_is_reserved():
    for spec in ({}, {"executor": {"gpu": 2, "cores": 4}}):
        keys = set(builders.spark_properties(job(**spec), "scoring", 1, "img", "Never"))
        assert keys <= set(isolation.OPERATOR_SPARK_KEYS), keys - set(isolation.OPERATOR_SPARK_KEYS)
    assert len(set(isolation.OPERATOR_SPARK_KEYS)) == len(isolation.OPERATOR_SPARK_KEYS)


def test_every_env_name_volume_and_path_the_operator_sets_is_reserved():
    pod = builders.driver_pod(job(), BODY, CONFIG, 1, auth_secret="risk-auth-x", spec_sha256="sha256:0")
    container = pod["spec"]["containers"][0]
    assert {e["name"] for e in container["env"]} <= set(isolation.OPERATOR_ENV)
    assert {v["name"] for v in pod["spec"]["volumes"]} <= set(isolation.OPERATOR_VOLUMES)
    assert {m["mountPath"] for m in container["volumeMounts"]} <= set(isolation.OPERATOR_PATHS)
    executor_env = {k.removeprefix("spark.executorEnv.") for k in builders.spark_properties(job(), "s", 1, "i")
                    if k.startswith("spark.executorEnv.")}
    assert executor_env <= set(isolation.OPERATOR_ENV)


def test_auth_secret():
    secret = isolation.auth_secret(job(), BODY, b"k" * 32)
    meta = secret["metadata"]
    assert "name" not in meta and meta["generateName"] == "risk-auth-", "a name nobody can create first"
    assert meta["ownerReferences"][0]["uid"] == "uid-1" and secret["immutable"] is True
    assert base64.b64decode(secret["data"][names.AUTH_KEY]) == b"k" * 32


def test_network_policy_admits_only_the_jobs_own_pods():
    np = isolation.network_policy(job(), BODY)
    assert np["metadata"]["name"] == "risk-pods" and np["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    own = {"matchLabels": {names.LABEL_JOB: "risk"}}
    assert np["spec"] == {"podSelector": own, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": own}]}]}
    driver = builders.driver_pod(job(), BODY, CONFIG, 1)
    template = builders.executor_pod_template(job(), CONFIG, "img")
    for labels in (driver["metadata"]["labels"], template["metadata"]["labels"]):
        assert own["matchLabels"].items() <= labels.items(), "driver and executors are selected"


def test_digests_and_sizes():
    cm = builders.config_map(job(), BODY, CONFIG, 1, "risk-auth-x")
    assert isolation.data_sha256(cm) == isolation.data_sha256({"data": dict(reversed(cm["data"].items()))})
    assert isolation.data_sha256(cm) != isolation.data_sha256(builders.config_map(job(), BODY, CONFIG, 2, "x"))
    assert isolation.config_map_size(cm) == sum(len(k) + len(v.encode()) for k, v in cm["data"].items())
    assert isolation.sha256("") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
