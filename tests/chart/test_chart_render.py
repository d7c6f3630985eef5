"""helm lint + helm template: what the chart renders for the key values (no cluster needed)."""

from __future__ import annotations

import tarfile
from typing import Any

import pytest
import yaml
from chart_helpers import VALUES_ALL, env_of, kinds, one, operator_container

from harness.common import ROOT
from harness.kube import CHART, Helm
from tfscore.operator.config import OperatorConfig

NS = "tfscore-system"
DIGEST = "sha256:" + "ab" * 32


def operator_rules(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    return {(group, res): set(rule["verbs"]) for rule in role["rules"]
            for group in rule["apiGroups"] for res in rule["resources"]}


def args(docs: list[dict[str, Any]]) -> list[str]:
    """`tfscore operator`'s options (the image's ENTRYPOINT, tini, runs the container args)."""
    container = operator_container(docs)
    assert "command" not in container and container["args"][:2] == ["tfscore", "operator"]
    return container["args"][2:]


@pytest.mark.parametrize("files", [[], [VALUES_ALL]], ids=["default", "all-options"])
def test_helm_lint_strict(helm: Helm, files: list) -> None:
    extra = [a for f in files for a in ("-f", str(f))]
    out = helm.run("lint", "--strict", str(CHART), *extra)
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


def test_default_render(helm: Helm) -> None:
    docs = helm.template(namespace=NS)
    assert sorted(d["kind"] for d in docs) == sorted([
        "ServiceAccount", "ServiceAccount",            # operator, driver
        "Role", "RoleBinding", "Role", "RoleBinding",  # operator, driver (both in the release namespace)
        "ClusterRole", "ClusterRoleBinding",           # kopf's read-only namespace/CRD observation
        "Deployment", "Service",                       # operator, metrics
        "ScoringPolicy",                               # the job namespace's policy
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicy",  # ScoringJobs, the drivers' writes
        "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding"])
    assert {d["metadata"].get("namespace") for d in docs
            if not d["kind"].startswith(("Cluster", "ValidatingAdmission"))} == {NS}
    assert args(docs) == [f"--namespace={NS}", "--liveness=http://0.0.0.0:8080/healthz", "--metrics-port=9090",
                          "--standalone"]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # a standalone operator never overlaps its successor


def test_watch_namespaces_get_roles_and_driver_accounts(helm: Helm) -> None:
    docs = helm.template({"watchNamespaces": ["jobs-a", "jobs-b"]}, namespace=NS)
    for ns in ("jobs-a", "jobs-b"):
        role = one(docs, "Role", "-operator", ns)
        binding = one(docs, "RoleBinding", "-operator", ns)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": role["metadata"]["name"]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "t-tfscore", "namespace": NS}]
        assert one(docs, "ServiceAccount", "tfscore-driver", ns)["automountServiceAccountToken"] is False
        driver_binding = one(docs, "RoleBinding", "-driver", ns)
        assert driver_binding["subjects"] == [{"kind": "ServiceAccount", "name": "tfscore-driver", "namespace": ns}]
    assert not [d for d in kinds(docs, "Role") if d["metadata"]["namespace"] == NS]  # nothing in unwatched namespaces
    assert [d["metadata"]["name"] for d in kinds(docs, "ClusterRole")] == ["t-tfscore-discovery"]
    assert args(docs)[:2] == ["--namespace=jobs-a", "--namespace=jobs-b"]


def test_operator_rules_cover_its_api_calls_and_nothing_more(helm: Helm) -> None:
    rules = operator_rules(one(helm.template(namespace=NS), "Role", "-operator"))
    assert rules == {
        ("tfscore.io", "scoringjobs"): {"get", "list", "watch", "create", "patch", "update", "delete"},  # runs: create
        ("tfscore.io", "scoringjobs/status"): {"get", "patch", "update"},
        ("tfscore.io", "scoringschedules"): {"get", "list", "watch"},
        ("tfscore.io", "scoringschedules/status"): {"get", "patch", "update"},
        ("", "pods"): {"create", "get", "list", "watch", "delete", "patch"},
        ("", "services"): {"create", "get", "list", "watch", "delete", "patch"},
        ("", "configmaps"): {"create", "get", "list", "watch", "delete"},  # immutable: never patched
        ("", "secrets"): {"create"},                                      # the auth Secret: never read
        ("networking.k8s.io", "networkpolicies"): {"create", "get"},
        ("tfscore.io", "scoringpolicies"): {"get"},
        ("", "events"): {"create", "patch"},
    }


@pytest.mark.parametrize("cluster_wide", [False, True], ids=["namespaced", "cluster-wide"])
def test_kueue_adds_workload_rules_a_read_only_cluster_role_and_the_switch(helm: Helm, cluster_wide: bool) -> None:
    off = helm.template({"clusterWide": cluster_wide}, namespace=NS)
    assert env_of(operator_container(off))["TFSCORE_KUEUE"] == "false"
    assert not [d for d in off if d["metadata"]["name"].endswith("-kueue")]
    assert all(group != "kueue.x-k8s.io" for role in kinds(off, "Role") + kinds(off, "ClusterRole")
               for group, _ in operator_rules(role))
    on = helm.template({"clusterWide": cluster_wide, "kueue": {"enabled": True}}, namespace=NS)
    assert env_of(operator_container(on))["TFSCORE_KUEUE"] == "true"
    rules = operator_rules(one(on, "ClusterRole" if cluster_wide else "Role", "-operator"))
    assert rules[("kueue.x-k8s.io", "workloads")] == {"create", "get", "list", "watch", "patch", "delete"}
    assert rules[("kueue.x-k8s.io", "workloads/status")] == {"get", "patch"}
    assert operator_rules(one(on, "ClusterRole", "-kueue")) == {("kueue.x-k8s.io", "resourceflavors"): {"get"},
                                                               ("scheduling.k8s.io", "priorityclasses"): {"get", "list"}}
    binding = one(on, "ClusterRoleBinding", "-kueue")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "t-tfscore-kueue"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "t-tfscore", "namespace": NS}]


def test_driver_role_is_what_spark_needs(helm: Helm) -> None:
    """Spark 4.3's client-mode calls with the operator's properties: its own pod (get, the progress annotation's
    patch), its executors (create, list, watch, delete by name and by label). No configmaps, services, claims."""
    rules = operator_rules(one(helm.template(namespace=NS), "Role", "-driver"))
    assert rules == {("", "pods"): {"create", "get", "list", "watch", "delete", "deletecollection", "patch"}}


def test_scoring_policy_per_job_namespace(helm: Helm) -> None:
    """The runtime images and the driver account always; the values' lists; a namespace's additions only there."""
    values = {"watchNamespaces": ["jobs-a", "jobs-b"], "runtime": {
        "image": {"repository": "reg/rt", "digest": DIGEST}, "gpuImage": {"repository": "reg/rt-gpu", "tag": "1"},
        "pullPolicy": "Never", "runAsUser": 1000},
        "policy": {"images": ["reg/team/*"], "namespaces": {"jobs-b": {
            "images": ["reg/b/x@sha256:" + "c" * 64], "serviceAccounts": ["b-driver"],
            "sparkConf": {"allow": ["spark.sql.catalog.*"]}, "env": {"allow": ["TF_CPP_MIN_LOG_LEVEL"],
                                                                      "envFromWithoutPrefix": True}}}}}
    docs = helm.template(values, namespace=NS)
    a, b = (one(docs, "ScoringPolicy", "", ns)["spec"] for ns in ("jobs-a", "jobs-b"))
    assert a["images"] == [f"reg/rt@{DIGEST}", "reg/rt-gpu:1", "reg/team/*"]
    assert b["images"] == [*a["images"], "reg/b/x@sha256:" + "c" * 64]
    assert (a["serviceAccounts"], b["serviceAccounts"]) == (["tfscore-driver"], ["tfscore-driver", "b-driver"])
    assert (a["sparkConf"]["allow"], b["sparkConf"]["allow"]) == ([], ["spark.sql.catalog.*"])
    assert (a["env"]["envFromWithoutPrefix"], b["env"]["envFromWithoutPrefix"]) == (False, True)
    assert a["sparkConf"]["deny"] == b["sparkConf"]["deny"] and len(a["sparkConf"]["deny"]) > 60
    assert env_of(operator_container(docs))["TFSCORE_POLICY"] == "t-tfscore"
    guard = next(d for d in kinds(docs, "ValidatingAdmissionPolicy") if d["metadata"]["name"] == "t-tfscore-driver")
    assert "['tfscore-driver','b-driver']" in guard["spec"]["matchConditions"][0]["expression"]
    binding = one(docs, "ValidatingAdmissionPolicyBinding", "-scoringjobs")["spec"]
    assert binding["paramRef"] == {"name": "t-tfscore", "parameterNotFoundAction": "Deny"}
    assert binding["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"] == ["jobs-a", "jobs-b"]


def test_the_admission_policies_are_the_generated_ones(helm: Helm) -> None:
    from tfscore.operator.scoringjob import admission

    docs = helm.template(namespace=NS)
    policies = {d["metadata"]["name"]: d["spec"] for d in kinds(docs, "ValidatingAdmissionPolicy")}
    jobs = dict(policies["t-tfscore-scoringjobs"])
    given, jobs["variables"] = jobs["variables"][:1], jobs["variables"][1:]
    assert [v["name"] for v in given] == list(admission.SCORINGJOB_CHART_VARIABLES)
    assert given[0]["expression"] == f"'system:serviceaccount:{NS}:t-tfscore'"  # the operator's account
    assert jobs == admission.scoringjob_policy()
    guard = dict(policies["t-tfscore-driver"])
    assert guard.pop("matchConditions")[0]["name"] == "driver-accounts"
    given, guard["variables"] = guard["variables"][:2], guard["variables"][2:]
    assert [v["name"] for v in given] == list(admission.CHART_VARIABLES)
    assert given[0]["expression"] == "['localhost/tfscore/runtime:0.1.0']"
    assert guard == admission.driver_policy()
    assert "paramRef" not in one(docs, "ValidatingAdmissionPolicyBinding", "-driver")["spec"]
    cluster = helm.template({"clusterWide": True}, namespace=NS)
    assert "matchResources" not in one(cluster, "ValidatingAdmissionPolicyBinding", "-scoringjobs")["spec"]
    off = helm.template({"policy": {"admission": False}}, namespace=NS)  # helm merges maps into the defaults
    assert not kinds(off, "ValidatingAdmissionPolicy") and kinds(off, "ScoringPolicy")
    none = helm.template({"policy": {"enabled": False}}, namespace=NS)
    assert not kinds(none, "ScoringPolicy") and not kinds(none, "ValidatingAdmissionPolicy")
    assert "TFSCORE_POLICY" not in env_of(operator_container(none))


def test_cluster_wide_uses_one_cluster_role(helm: Helm) -> None:
    docs = helm.template({"clusterWide": True, "watchNamespaces": ["jobs-a"]}, namespace=NS)
    role = one(docs, "ClusterRole", "-operator")
    binding = one(docs, "ClusterRoleBinding", "-operator")
    assert binding["roleRef"]["kind"] == "ClusterRole" and binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "t-tfscore", "namespace": NS}]
    assert ("tfscore.io", "scoringjobs/status") in operator_rules(role)
    assert not [d for d in kinds(docs, "Role") if d["metadata"]["name"].endswith("-operator")]
    assert not [a for a in args(docs) if a.startswith("--namespace")]  # kopf runs cluster-wide
    one(docs, "ServiceAccount", "tfscore-driver", "jobs-a")  # drivers still get their account in the listed namespaces
    one(docs, "Role", "-driver", "jobs-a")


@pytest.mark.parametrize("cluster_wide", [False, True], ids=["namespaced", "cluster-wide"])
def test_replicas_turn_on_peering(helm: Helm, cluster_wide: bool) -> None:
    docs = helm.template({"replicas": 3, "clusterWide": cluster_wide, "watchNamespaces": ["jobs-a", "jobs-b"]},
                         namespace=NS)
    assert "--standalone" not in args(docs) and "--peering=t-tfscore" in args(docs)
    assert env_of(operator_container(docs))["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    if cluster_wide:
        assert [(d["kind"], d["metadata"]["name"]) for d in docs if "KopfPeering" in d["kind"]] == [
            ("ClusterKopfPeering", "t-tfscore")]
        assert operator_rules(one(docs, "ClusterRole", "-operator"))[("kopf.dev", "clusterkopfpeerings")] == {
            "get", "list", "watch", "patch"}
    else:
        peerings = kinds(docs, "KopfPeering")
        assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings) == [
            ("jobs-a", "t-tfscore"), ("jobs-b", "t-tfscore")]
        for ns in ("jobs-a", "jobs-b"):
            assert ("kopf.dev", "kopfpeerings") in operator_rules(one(docs, "Role", "-operator", ns))


def test_single_replica_has_no_peering(helm: Helm) -> None:
    docs = helm.template({"replicas": 1}, namespace=NS)
    assert "--standalone" in args(docs) and not [a for a in args(docs) if a.startswith("--peering")]
    assert not [d for d in docs if d["kind"] in ("KopfPeering", "ClusterKopfPeering", "PodDisruptionBudget")]
    assert all(group != "kopf.dev" for group, _ in operator_rules(one(docs, "Role", "-operator")))


def test_images_by_digest_and_tag_fallback(helm: Helm) -> None:
    values = {"image": {"repository": "reg.example.com/op", "digest": DIGEST, "tag": "ignored"},
              "runtime": {"image": {"repository": "reg.example.com/rt", "digest": DIGEST},
                          "gpuImage": {"repository": "reg.example.com/rt-gpu", "tag": "2.0-gpu"},
                          "pullPolicy": "Never", "runAsUser": 1000}}
    container = operator_container(helm.template(values, namespace=NS))
    assert container["image"] == f"reg.example.com/op@{DIGEST}"
    env = env_of(container)
    assert env["TFSCORE_RUNTIME_IMAGE"] == f"reg.example.com/rt@{DIGEST}"
    assert env["TFSCORE_RUNTIME_IMAGE_GPU"] == "reg.example.com/rt-gpu:2.0-gpu"
    assert env["TFSCORE_IMAGE_PULL_POLICY"] == "Never"

    default = operator_container(helm.template(namespace=NS))
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert default["image"] == f"localhost/tfscore/operator:{app_version}"
    assert env_of(default)["TFSCORE_RUNTIME_IMAGE"] == f"localhost/tfscore/runtime:{app_version}"
    assert "TFSCORE_RUNTIME_IMAGE_GPU" not in env_of(default)


def test_operator_env_is_what_the_operator_reads(helm: Helm) -> None:
    """Every TFSCORE_* variable the chart sets is one OperatorConfig reads, and the rendered values parse."""
    for docs in (helm.template(namespace=NS), helm.template(files=[VALUES_ALL], namespace=NS)):
        env = {k: v for k, v in env_of(operator_container(docs)).items() if k.startswith("TFSCORE_")}
        assert set(env) <= set(OperatorConfig._ENV.values())
        OperatorConfig.from_env(env)  # raises, naming the variable, if a value does not parse
    env = env_of(operator_container(helm.template(files=[VALUES_ALL], namespace=NS)))
    config = OperatorConfig.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert (config.driver_service_account, config.run_as_user, config.workers) == ("spark-driver", 2000, 4)
    assert (config.backoff_base_seconds, config.backoff_max_seconds) == (5.0, 120.5)
    assert env["TZ"] == "UTC"  # operator.extraEnv


def test_integer_values_render_as_integers(helm: Helm) -> None:
    """Helm reads numbers from values files as float64: 1000000 must not become 1e+06."""
    docs = helm.template({"runAsUser": 1000000, "runAsGroup": 1000000,
                          "runtime": {"image": {"repository": "r"}, "pullPolicy": "Never", "runAsUser": 2000000},
                          "operator": {"workers": 1000000 // 10000, "backoffBaseSeconds": 1, "backoffMaxSeconds": 2,
                                       "healthPort": 60000}}, namespace=NS)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 1000000
    assert env_of(pod["containers"][0])["TFSCORE_RUN_AS_USER"] == "2000000"
    assert "--liveness=http://0.0.0.0:60000/healthz" in args(docs)


def test_metrics_service_and_service_monitor(helm: Helm) -> None:
    docs = helm.template({"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}, namespace=NS)
    service = one(docs, "Service", "-metrics")
    deployment = one(docs, "Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in deployment["spec"]["template"]["spec"][
        "containers"][0]["ports"]
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NS]}
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"

    off = helm.template({"metrics": {"enabled": False, "port": 9090}}, namespace=NS)
    assert "--metrics-port=0" in args(off)
    assert not kinds(off, "Service") and not kinds(off, "ServiceMonitor")
    assert [p["name"] for p in operator_container(off)["ports"]] == ["health"]
    assert not kinds(helm.template(namespace=NS), "ServiceMonitor")  # off by default


def test_probes_hit_kopfs_liveness_endpoint(helm: Helm) -> None:
    container = operator_container(helm.template({"operator": {"healthPort": 8181, "workers": 8,
                                                               "backoffBaseSeconds": 10, "backoffMaxSeconds": 360}},
                                                 namespace=NS))
    assert "--liveness=http://0.0.0.0:8181/healthz" in container["args"][2:]
    assert {"name": "health", "containerPort": 8181, "protocol": "TCP"} in container["ports"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


@pytest.mark.parametrize("files", [[], [VALUES_ALL]], ids=["default", "all-options"])
def test_pods_are_restricted_by_construction(helm: Helm, files: list) -> None:
    """Pod Security "restricted" plus what it does not check (read-only root, resources, token only where needed)."""
    docs = helm.template(files=files, namespace=NS)
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet",
                                                                          "Job", "CronJob", "Pod")]
    assert len(pods) == 1
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert isinstance(pod["securityContext"]["runAsUser"], int) and pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is True  # the operator needs the API; nothing else mounts a token
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(key)
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v]
        for container in pod["containers"] + pod.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
            assert ctx["capabilities"] == {"drop": ["ALL"]} and not ctx.get("privileged")
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    for account in kinds(docs, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("files", [[], [VALUES_ALL]], ids=["default", "all-options"])
def test_rbac_has_no_wildcards_or_secrets(helm: Helm, files: list) -> None:
    docs = helm.template(files=files, namespace=NS)
    for role in kinds(docs, "Role") + kinds(docs, "ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], role["metadata"]["name"]
            if "secrets" in rule["resources"]:  # only the operator, only to create each job's auth Secret
                assert rule["verbs"] == ["create"] and role["metadata"]["name"].endswith("-operator"), rule
            if role["kind"] == "ClusterRole" and role["metadata"]["name"].endswith("-discovery"):
                assert set(rule["verbs"]) == {"list", "watch"}


@pytest.mark.parametrize("files", [[], [VALUES_ALL]], ids=["default", "all-options"])
def test_labels_and_selectors(helm: Helm, files: list) -> None:
    docs = helm.template(files=files, namespace=NS)
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                "app.kubernetes.io/managed-by", "helm.sh/chart"} <= set(labels), doc["metadata"]["name"]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"][
        "labels"].items()


def test_chart_crd_is_the_generated_crd(helm: Helm, tmp_path) -> None:
    """One source of truth: crds/scoringjob.yaml and crds/scoringschedule.yaml (generated from the pydantic models)
    are the chart's CRDs, byte for byte, also inside the packaged chart (helm package resolves the symlinks)."""
    helm.run("package", str(CHART), "--destination", str(tmp_path))
    (package,) = tmp_path.glob("tfscore-*.tgz")
    with tarfile.open(package) as tar:
        for name in ("scoringjob.yaml", "scoringschedule.yaml"):
            source = (ROOT / "crds" / name).read_bytes()
            assert (CHART / "crds" / name).read_bytes() == source
            member = tar.getmember(f"tfscore/crds/{name}")
            assert member.isfile()
            assert tar.extractfile(member).read() == source
        assert "tfscore/values.schema.json" in tar.getnames()
