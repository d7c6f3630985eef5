"""Operator configuration from the environment: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from tfscore.operator.config import OperatorConfig


def test_defaults():
    config = OperatorConfig.from_env({})
    assert config.driver_service_account == "tfscore-driver" and config.run_as_user == 1000
    assert config.image_for(0) == config.runtime_image == config.image_for(2), "no GPU image: the CPU image"
    assert [config.backoff(n) for n in (1, 2, 3)] == [10, 20, 40]
    assert config.backoff(20) == 360


def test_every_variable_is_read():
    env = {"TFSCORE_RUNTIME_IMAGE": "r@sha256:1", "TFSCORE_RUNTIME_IMAGE_GPU": "g@sha256:2",
           "TFSCORE_IMAGE_PULL_POLICY": "Never", "TFSCORE_DRIVER_SERVICE_ACCOUNT": "sa",
           "TFSCORE_RUN_AS_USER": "2000", "TFSCORE_BACKOFF_BASE_SECONDS": "0.5", "TFSCORE_BACKOFF_MAX_SECONDS": "4",
           "TFSCORE_WORKERS": "3", "TFSCORE_KUEUE": "True"}
    config = OperatorConfig.from_env(env)
    assert (config.runtime_image, config.runtime_image_gpu, config.image_pull_policy, config.driver_service_account,
            config.run_as_user, config.backoff_base_seconds, config.backoff_max_seconds, config.workers,
            config.kueue) == ("r@sha256:1", "g@sha256:2", "Never", "sa", 2000, 0.5, 4.0, 3, True)
    assert OperatorConfig.from_env({"TFSCORE_KUEUE": "false"}).kueue is False
    assert OperatorConfig.from_env({}).kueue is False
    assert config.image_for(1) == "g@sha256:2" and config.image_for(0) == "r@sha256:1"
    assert [config.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 4, 4]


@pytest.mark.parametrize("env,named", [
    ({"TFSCORE_WORKERS": "many"}, "TFSCORE_WORKERS='many': expected int"),
    ({"TFSCORE_KUEUE": "yes"}, "TFSCORE_KUEUE='yes': expected true or false"),
    ({"TFSCORE_RUN_AS_USER": "0"}, "TFSCORE_RUN_AS_USER=0: must be a non-root uid"),
    ({"TFSCORE_IMAGE_PULL_POLICY": "Sometimes"}, "TFSCORE_IMAGE_PULL_POLICY='Sometimes'"),
    ({"TFSCORE_BACKOFF_BASE_SECONDS": "100", "TFSCORE_BACKOFF_MAX_SECONDS": "10"}, "TFSCORE_BACKOFF_BASE_SECONDS"),
])
def test_bad_values_name_the_variable(env, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace("?", r"\?")):
        OperatorConfig.from_env(env)


def test_policy_name_and_resync():
    config = OperatorConfig.from_env({"TFSCORE_POLICY": "tfscore", "TFSCORE_RESYNC_SECONDS": "2.5"})
    assert (config.policy_name, config.resync_seconds) == ("tfscore", 2.5)
    assert OperatorConfig.from_env({}).resync_seconds == 30 and OperatorConfig.from_env({}).policy_name == ""
    with pytest.raises(ValueError, match="TFSCORE_RESYNC_SECONDS=0: must be > 0"):
        OperatorConfig.from_env({"TFSCORE_RESYNC_SECONDS": "0"})
