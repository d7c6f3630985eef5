"""values.schema.json (and the chart's cross-field checks) reject wrong values with a message naming the value."""

from __future__ import annotations

from typing import Any

import pytest
from chart_helpers import VALUES_ALL

from harness.kube import Helm

BAD: list[tuple[str, dict[str, Any], list[str]]] = [
    ("replicas-not-integer", {"replicas": "two"}, ["at '/replicas'", "got string, want integer"]),
    ("replicas-zero", {"replicas": 0}, ["at '/replicas'", "minimum: got 0, want 1"]),
    ("digest-not-sha256", {"image": {"repository": "r", "digest": "latest"}},
     ["at '/image/digest'", "'latest' does not match pattern", "sha256:[a-f0-9]{64}"]),
    ("digest-short", {"image": {"repository": "r", "digest": "sha256:abc"}}, ["at '/image/digest'", "'sha256:abc'"]),
    ("runtime-digest", {"runtime": {"image": {"repository": "r", "digest": "md5:00"}, "pullPolicy": "Never",
                                    "runAsUser": 1}}, ["at '/runtime/image/digest'"]),
    ("tag-in-repository", {"image": {"repository": "reg/op:1.0"}}, ["at '/image/repository'", "'reg/op:1.0'"]),
    ("pull-policy", {"image": {"repository": "r", "pullPolicy": "Sometimes"}},
     ["at '/image/pullPolicy'", "'Always', 'IfNotPresent', 'Never'"]),
    ("root-user", {"runAsUser": 0}, ["at '/runAsUser'", "minimum: got 0, want 1"]),
    ("runtime-root-user", {"runtime": {"image": {"repository": "r"}, "pullPolicy": "Never", "runAsUser": 0}},
     ["at '/runtime/runAsUser'"]),
    ("namespace-name", {"watchNamespaces": ["Jobs_A"]}, ["at '/watchNamespaces/0'", "'Jobs_A' does not match"]),
    ("namespaces-not-list", {"watchNamespaces": "jobs-a"}, ["at '/watchNamespaces'", "got string, want array"]),
    ("cluster-wide-string", {"clusterWide": "yes"}, ["at '/clusterWide'", "got string, want boolean"]),
    ("unknown-key", {"replica": 2}, ["additional properties 'replica' not allowed"]),
    ("unknown-nested-key", {"metrics": {"enabled": True, "port": 9090, "path": "/m"}},
     ["at '/metrics'", "additional properties 'path' not allowed"]),
    ("port-range", {"metrics": {"enabled": True, "port": 70000}}, ["at '/metrics/port'", "maximum"]),
    ("interval", {"serviceMonitor": {"enabled": True, "interval": "30 seconds"}},
     ["at '/serviceMonitor/interval'", "'30 seconds' does not match"]),
    ("workers", {"operator": {"workers": 0, "backoffBaseSeconds": 1, "backoffMaxSeconds": 2, "healthPort": 8080}},
     ["at '/operator/workers'"]),
    ("resources", {"resources": {"limits": {"memory": "lots"}}}, ["at '/resources/limits/memory'"]),
    ("env-entry", {"operator": {"workers": 1, "backoffBaseSeconds": 1, "backoffMaxSeconds": 2, "healthPort": 8080,
                                "extraEnv": [{"value": "x"}]}}, ["at '/operator/extraEnv/0'", "missing property 'name'"]),
    # cross-field checks (template `fail`): the message names both values
    ("same-ports", {"metrics": {"enabled": True, "port": 8080}},
     ["metrics.port and operator.healthPort are both 8080"]),
    ("backoff-order", {"operator": {"workers": 1, "backoffBaseSeconds": 60, "backoffMaxSeconds": 10, "healthPort": 8080}},
     ["operator.backoffMaxSeconds (10) must be >= operator.backoffBaseSeconds (60)"]),
    ("monitor-without-metrics", {"metrics": {"enabled": False, "port": 9090}, "serviceMonitor": {"enabled": True}},
     ["serviceMonitor.enabled needs metrics.enabled: true"]),
    ("service-account-name", {"serviceAccount": {"create": False}},
     ["serviceAccount.name is required when serviceAccount.create is false"]),
    ("policy-unknown-namespace", {"policy": {"namespaces": {"elsewhere": {"images": []}}}},
     ["policy.namespaces.elsewhere: not a job namespace"]),
    ("policy-bad-pattern", {"policy": {"sparkConf": {"mode": "denylist", "deny": ["spark.(x|y)"], "allow": []}}},
     ["at '/policy/sparkConf/deny/0'"]),
    ("policy-mode", {"policy": {"sparkConf": {"mode": "maybe", "deny": [], "allow": []}}},
     ["at '/policy/sparkConf/mode'"]),
    ("policy-namespace-key", {"policy": {"namespaces": {"tfscore-system": {"sparkConf": {"deny": ["x"]}}}}},
     ["additional properties 'deny' not allowed"]),
]


@pytest.mark.parametrize(("values", "expected"), [(v, e) for _, v, e in BAD], ids=[i for i, _, _ in BAD])
def test_wrong_values_are_rejected_with_a_clear_message(helm: Helm, values: dict[str, Any], expected: list[str]) -> None:
    out = helm.template_text(values, check=False)
    assert out.returncode != 0, f"accepted: {values}"
    for text in expected:
        assert text in out.stderr, f"{text!r} not in:\n{out.stderr}"


@pytest.mark.parametrize("values", [
    {},
    {"image": {"repository": "registry.example.com:5000/ml/op", "digest": "sha256:" + "0" * 64}},
    {"image": {"repository": "op", "tag": "1.2.3-rc.1"}},
    {"podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"}, "replicas": 2},
    {"metrics": {"enabled": False, "port": 9090}},
    {"watchNamespaces": ["a", "b-2"], "clusterWide": True},
], ids=["defaults", "digest", "tag", "pdb-percent", "no-metrics", "cluster-wide"])
def test_good_values_are_accepted(helm: Helm, values: dict[str, Any]) -> None:
    helm.template_text(values)


def test_all_options_file_is_valid(helm: Helm) -> None:
    helm.template_text(files=[VALUES_ALL])
