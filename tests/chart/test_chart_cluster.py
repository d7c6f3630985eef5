"""The chart against the real kube-apiserver: server-side dry run of every rendered object, Pod Security "restricted"
admission of the operator pods, RBAC as the chart's own ServiceAccounts (kubectl auth can-i and real API calls), and
the real operator running with exactly the chart's arguments, environment and ServiceAccount."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import VALUES_ALL, one, operator_container, pod_from

from harness.common import wait_for
from harness.controlplane import api_client
from harness.kube import CHART, Helm, Kubectl
from harness.operator_process import FAKE_IMAGE, Operator
from harness.scoringjobs import scoringjob

# Three real releases: defaults (jobs in the release namespace), every option (two job namespaces, two replicas), and
# cluster-wide (one ClusterRole; the driver account in the listed namespace).
RELEASE_NS = {"default": "tfs-chart-default", "all": "tfs-chart-all", "cluster": "tfs-chart-cluster"}
JOB_NS = {"default": ["tfs-chart-default"], "all": ["tfs-jobs-a", "tfs-jobs-b"], "cluster": ["tfs-jobs-c"]}
FILES = {"default": [], "all": [VALUES_ALL], "cluster": []}
VALUES = {"default": None, "all": None, "cluster": {"clusterWide": True, "watchNamespaces": JOB_NS["cluster"]}}


# ---------------------------------------------------------------- server-side dry run


@pytest.mark.parametrize("variant", ["default", "all-options", "all-options-cluster-wide"])
def test_server_side_dry_run(helm: Helm, kubectl: Kubectl, crds: None, servicemonitor_crd: None, namespaces: Any,
                             variant: str) -> None:
    """Every rendered object is accepted by the API server (strict field validation, CRD schemas, admission), and the
    Pod Security "restricted" warn mode of the namespaces finds nothing in the Deployment's pod template."""
    release_ns = namespaces("tfs-chart-dry")
    for ns in JOB_NS["all"]:
        namespaces(ns)
    files = [] if variant == "default" else [VALUES_ALL]
    values = {"clusterWide": True} if variant.endswith("cluster-wide") else None
    manifest = helm.template_text(values, files=files, release="dry", namespace=release_ns).stdout
    out = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", input=manifest)
    applied = [line for line in out.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(applied) == len([d for d in yaml.safe_load_all(manifest) if d])
    assert "Warning" not in out.stderr, out.stderr


# ---------------------------------------------------------------- a real install


class Release:
    def __init__(self, variant: str, docs: list[dict[str, Any]]) -> None:
        self.variant, self.docs = variant, docs
        self.namespace = RELEASE_NS[variant]
        self.job_namespaces = JOB_NS[variant]
        self.cluster_wide = bool((VALUES[variant] or {}).get("clusterWide"))
        deployment = one(docs, "Deployment")
        self.deployment = deployment
        self.operator_sa = f"{self.namespace}:{deployment['spec']['template']['spec']['serviceAccountName']}"
        self.driver_sa_name = one(docs, "RoleBinding", "-driver", self.job_namespaces[0])["subjects"][0]["name"]


@pytest.fixture(scope="module", params=list(RELEASE_NS))
def release(request: pytest.FixtureRequest, helm: Helm, kubectl: Kubectl, kubeconfig: str, crds: None,
            servicemonitor_crd: None, namespaces: Any) -> Iterator[Release]:
    variant = request.param
    for ns in {RELEASE_NS[variant], *JOB_NS[variant]}:
        namespaces(ns)
    helm.install(variant, RELEASE_NS[variant], kubeconfig, VALUES[variant], files=FILES[variant])
    docs = helm.template(VALUES[variant], files=FILES[variant], release=variant, namespace=RELEASE_NS[variant])
    yield Release(variant, docs)
    helm.run("uninstall", variant, "-n", RELEASE_NS[variant], check=False, kubeconfig=kubeconfig)  # also on $KUBECONFIG


def test_pod_security_restricted_admits_the_operator_pods(release: Release, kubectl: Kubectl) -> None:
    """The ReplicaSet controller's real pod creates pass the namespace's enforce=restricted admission; a pod breaking
    one rule is refused there (so the check is live)."""
    ns, replicas = release.namespace, release.deployment["spec"]["replicas"]
    selector = ",".join(f"{k}={v}" for k, v in release.deployment["spec"]["selector"]["matchLabels"].items())

    def created() -> list[str]:
        return kubectl("-n", ns, "get", "pods", "-l", selector, "-o", "name").stdout.split()

    pods = wait_for(f"{replicas} operator pods in {ns}", lambda: len(created()) == replicas and created())
    assert len(pods) == replicas
    events = json.loads(kubectl("-n", ns, "get", "events", "-o", "json").stdout)["items"]
    assert not [e["message"] for e in events if e["reason"] == "FailedCreate"]

    pod = pod_from(release.deployment, "psa-probe")
    kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod))
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr


def allowed(kubeconfig: str, sa: str, verb: str, group: str, resource: str, namespace: str = "",
            subresource: str = "") -> bool:
    """A SubjectAccessReview naming the API group itself: `kubectl auth can-i` needs the resource in discovery, and
    Kueue's CRDs are not installed in this tier."""
    from kubernetes import client

    review = client.AuthorizationV1Api(api_client(kubeconfig)).create_subject_access_review({"spec": {
        "user": f"system:serviceaccount:{sa}", "groups": ["system:serviceaccounts", "system:authenticated"],
        "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": namespace,
                               "subresource": subresource}}})
    return bool(review.status.allowed)


def test_operator_service_account_may_do_its_job_and_no_more(release: Release, kubectl: Kubectl,
                                                            kubeconfig: str) -> None:
    sa = release.operator_sa
    for ns in release.job_namespaces:
        for verb, resource in [("watch", "scoringjobs.tfscore.io"), ("patch", "scoringjobs.tfscore.io/status"),
                               ("delete", "scoringjobs.tfscore.io"), ("create", "scoringjobs.tfscore.io"),
                               ("watch", "scoringschedules.tfscore.io"),
                               ("patch", "scoringschedules.tfscore.io/status"), ("create", "pods"), ("delete", "pods"),
                               ("watch", "pods"), ("create", "configmaps"), ("delete", "configmaps"),
                               ("create", "services"), ("create", "events"), ("create", "secrets"),
                               ("create", "networkpolicies.networking.k8s.io"),
                               ("get", "scoringpolicies.tfscore.io")]:
            assert kubectl.can_i(verb, resource, sa, ns), f"{sa} cannot {verb} {resource} in {ns}"
        for verb, resource in [("get", "secrets"), ("list", "secrets"), ("patch", "scoringschedules.tfscore.io"),
                               ("delete", "scoringschedules.tfscore.io"), ("create", "roles"),
                               ("create", "serviceaccounts/token"), ("create", "pods/exec"),
                               ("patch", "configmaps"), ("patch", "scoringpolicies.tfscore.io")]:
            assert not kubectl.can_i(verb, resource, sa, ns), f"{sa} may {verb} {resource} in {ns}"
        peering = kubectl.can_i("patch", "kopfpeerings.kopf.dev", sa, ns)
        assert peering == (release.deployment["spec"]["replicas"] > 1)
    assert kubectl.can_i("list", "namespaces", sa) and kubectl.can_i("watch", "customresourcedefinitions", sa)
    for verb, resource in [("create", "namespaces"), ("create", "customresourcedefinitions"), ("list", "secrets"),
                           ("get", "nodes"), ("create", "clusterroles")]:
        assert not kubectl.can_i(verb, resource, sa), f"{sa} may {verb} {resource} cluster-wide"
    kueue = release.variant == "all"  # values-all.yaml: kueue.enabled
    for ns in release.job_namespaces:
        for verb in ("create", "watch", "patch", "delete"):
            assert allowed(kubeconfig, sa, verb, "kueue.x-k8s.io", "workloads", ns) == kueue, verb
        assert allowed(kubeconfig, sa, "patch", "kueue.x-k8s.io", "workloads", ns, "status") == kueue
        assert not allowed(kubeconfig, sa, "create", "kueue.x-k8s.io", "localqueues", ns)
    assert allowed(kubeconfig, sa, "get", "kueue.x-k8s.io", "resourceflavors") == kueue
    assert allowed(kubeconfig, sa, "list", "scheduling.k8s.io", "priorityclasses") == kueue
    for verb, group, resource in [("create", "kueue.x-k8s.io", "resourceflavors"), ("update", "kueue.x-k8s.io",
                                  "clusterqueues"), ("create", "scheduling.k8s.io", "priorityclasses")]:
        assert not allowed(kubeconfig, sa, verb, group, resource), f"{sa} may {verb} {resource}"
    # Outside its namespaces: nothing, unless cluster-wide (then ScoringJobs and their children anywhere).
    assert kubectl.can_i("list", "pods", sa) == release.cluster_wide
    assert kubectl.can_i("create", "pods", sa, "default") == release.cluster_wide
    assert kubectl.can_i("watch", "scoringjobs.tfscore.io", sa, "default") == release.cluster_wide


def test_driver_service_account_may_do_what_spark_does_and_no_more(release: Release, kubectl: Kubectl) -> None:
    """kubectl auth can-i as the driver's account: Spark 4.3's client-mode calls (with the operator's properties) and
    nothing else: no configmaps, services, claims, update, secrets, other namespaces."""
    for ns in release.job_namespaces:
        sa = f"{ns}:{release.driver_sa_name}"
        for verb in ("create", "get", "list", "watch", "delete", "deletecollection", "patch"):
            assert kubectl.can_i(verb, "pods", sa, ns), f"{sa} cannot {verb} pods in {ns}"
        for verb, resource in [("update", "pods"), ("create", "configmaps"), ("get", "configmaps"),
                               ("create", "services"), ("delete", "services"), ("create", "persistentvolumeclaims"),
                               ("delete", "persistentvolumeclaims"), ("get", "secrets"), ("create", "pods/exec"),
                               ("patch", "pods/status"), ("create", "pods/eviction"), ("list", "scoringjobs.tfscore.io"),
                               ("create", "serviceaccounts/token")]:
            assert not kubectl.can_i(verb, resource, sa, ns), f"{sa} may {verb} {resource} in {ns}"
        assert not kubectl.can_i("list", "pods", sa) and not kubectl.can_i("create", "pods", sa, "default")


def test_driver_calls_what_spark_calls_and_the_admission_policy_keeps_it_to_its_own_pod(
        release: Release, kubectl: Kubectl, tmp_path: Path) -> None:
    """With a token bound to the driver pod, as its mounted one is: Spark's calls succeed (its own pod, executors it
    owns created, listed, watched, deleted by name and by label; the progress annotation patched); RBAC refuses the
    rest (403) and the chart's admission policy refuses what RBAC cannot tell apart (another pod, a pod it does not
    own, an executor with a token or another image, a label change, an unbound token)."""
    from kubernetes import client, watch
    from kubernetes.client.exceptions import ApiException

    ns = release.job_namespaces[0]
    image = next(e["value"] for e in operator_container(release.docs)["env"] if e["name"] == "TFSCORE_RUNTIME_IMAGE")
    driver = restricted_pod("drv", ns, {"spark-role": "driver"}, image)
    driver["spec"]["serviceAccountName"] = release.driver_sa_name
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(driver))
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(restricted_pod("bystander", ns, {"x": "y"}, image)))
    drv = json.loads(kubectl("-n", ns, "get", "pod", "drv", "-o", "json").stdout)
    sa = f"{ns}:{release.driver_sa_name}"
    core = client.CoreV1Api(api_client(kubectl.token_kubeconfig(sa, tmp_path / "kc", pod="drv")))
    app = {"spark-app-selector": f"spark-{uuid.uuid4().hex[:8]}", "spark-role": "executor"}
    selector = ",".join(f"{k}={v}" for k, v in app.items())
    owner = [{"apiVersion": "v1", "kind": "Pod", "name": "drv", "uid": drv["metadata"]["uid"], "controller": True}]

    def executor(name: str, **spec: Any) -> dict[str, Any]:
        pod = restricted_pod(name, ns, app, image)
        pod["metadata"]["ownerReferences"] = owner
        pod["spec"].update(spec)
        return pod

    core.read_namespaced_pod("drv", ns)
    for i in (1, 2, 3):
        core.create_namespaced_pod(ns, executor(f"{app['spark-app-selector']}-exec-{i}"))
    assert len(core.list_namespaced_pod(ns, label_selector=selector).items) == 3
    events = list(watch.Watch().stream(core.list_namespaced_pod, ns, label_selector=selector, timeout_seconds=1))
    assert {e["object"].metadata.name for e in events} == {f"{app['spark-app-selector']}-exec-{i}" for i in (1, 2, 3)}
    core.patch_namespaced_pod("drv", ns, {"metadata": {"annotations": {"tfscore.io/progress": '{"rowsScored": 1}'}}})
    core.delete_namespaced_pod(f"{app['spark-app-selector']}-exec-3", ns, grace_period_seconds=0)
    core.delete_collection_namespaced_pod(ns, label_selector=selector, grace_period_seconds=0)  # one DELETE, per-pod admission

    forbidden = [  # RBAC: 403
        ("read secrets", lambda: core.list_namespaced_secret(ns)),
        ("create a ConfigMap", lambda: core.create_namespaced_config_map(ns, {"metadata": {"name": "x"}})),
        ("create a Service", lambda: core.create_namespaced_service(ns, {"metadata": {"name": "x"}, "spec": {
            "ports": [{"port": 1}]}})),
        ("create a claim", lambda: core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": "x"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})),
        ("replace its pod", lambda: core.replace_namespaced_pod("drv", ns, core.read_namespaced_pod("drv", ns))),
        ("pods in another namespace", lambda: core.list_namespaced_pod("default")),
        ("pods cluster-wide", lambda: core.list_pod_for_all_namespaces()),
        ("ScoringJobs", lambda: client.CustomObjectsApi(core.api_client).list_namespaced_custom_object(
            "tfscore.io", "v1alpha1", ns, "scoringjobs")),
        ("pods/exec", lambda: core.connect_post_namespaced_pod_exec("drv", ns, command=["true"])),
        ("ServiceAccount tokens", lambda: core.create_namespaced_service_account_token(
            release.driver_sa_name, ns, {"spec": {"audiences": ["x"]}})),
    ]
    for what, call in forbidden:
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 403, f"{what}: {err.value.status} {err.value.reason}"

    refused = [  # the admission policy (<fullname>-driver): 422 with the reason
        ("a pod it does not own", lambda: core.create_namespaced_pod(ns, restricted_pod("stray", ns, app, image)),
         "a driver may create and delete only objects its own pod drv controls"),
        ("an executor with a token", lambda: core.create_namespaced_pod(ns, executor(
            "tok", automountServiceAccountToken=True)), "run without a service-account token"),
        ("an executor with another image", lambda: core.create_namespaced_pod(ns, {
            **executor("img"), "spec": {**executor("img")["spec"], "containers": [{
                **executor("img")["spec"]["containers"][0], "image": "docker.io/library/busybox"}]}}),
         "image docker.io/library/busybox is not an allowed image"),
        ("an executor with a volume type the policy lacks", lambda: core.create_namespaced_pod(ns, executor(
            "dapi", volumes=[{"name": "h", "downwardAPI": {"items": [{"path": "l", "fieldRef": {
                "fieldPath": "metadata.labels"}}]}}])), "volume h has a type"),  # (hostPath: Pod Security refuses)
        ("an executor with a projected token", lambda: core.create_namespaced_pod(ns, executor(
            "ptok", volumes=[{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}])),
         "volume t has a type"),
        ("another pod's annotation", lambda: core.patch_namespaced_pod("bystander", ns, {"metadata": {"annotations": {
            "tfscore.io/progress": "{}"}}}), "only the tfscore.io/progress annotation of its own pod"),
        ("its own labels", lambda: core.patch_namespaced_pod("drv", ns, {"metadata": {"labels": {
            "tfscore.io/job": "someone-else"}}}), "only the tfscore.io/progress annotation of its own pod"),
        ("delete a pod it does not own", lambda: core.delete_namespaced_pod("bystander", ns),
         "a driver may create and delete only objects its own pod drv controls"),
        ("every pod by label", lambda: core.delete_collection_namespaced_pod(ns, label_selector="x=y"),
         "a driver may create and delete only objects its own pod drv controls"),
    ]
    for what, call, words in refused:
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status in (403, 422) and words in err.value.body, f"{what}: {err.value.status} {err.value.body}"
    unbound = client.CoreV1Api(api_client(kubectl.token_kubeconfig(sa, tmp_path / "kc-unbound")))
    with pytest.raises(ApiException) as err:
        unbound.create_namespaced_pod(ns, executor("unbound"))
    assert "may write only with its pod-bound token" in err.value.body
    kubectl("-n", ns, "delete", "pod", "drv", "bystander", "--wait=false")


def restricted_pod(name: str, namespace: str, labels: dict[str, str], image: str = FAKE_IMAGE) -> dict[str, Any]:
    """A pod shaped like the operator's driver/executor pods (restricted: it must pass the namespace's admission)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"automountServiceAccountToken": False, "restartPolicy": "Never",
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "c", "image": image, "securityContext": {
                         "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                         "capabilities": {"drop": ["ALL"]}}}]}}


# ---------------------------------------------------------------- the real operator, as the chart runs it


class ChartOperator(Operator):
    """`tfscore operator` with the rendered Deployment's arguments and environment, authenticated as the chart's
    operator ServiceAccount. Only the two listen ports are local (several run side by side on this host)."""

    def __init__(self, release: Release, kubeconfig: str, log_dir: Path, pod_name: str) -> None:
        super().__init__(kubeconfig, log_dir)
        self.container = operator_container(release.docs)
        self.name = pod_name  # the pod it stands for: its log file and the POD_NAME it gets

    def args(self) -> list[str]:
        args = [a for a in self.container["args"] if not a.startswith(("--liveness=", "--metrics-port="))]
        assert args[0] == "tfscore"  # the image's tini runs the container args
        return [*args[1:], f"--liveness=http://127.0.0.1:{self.health_port}/healthz",
                f"--metrics-port={self.metrics_port}"]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TFSCORE_", "KUBECONFIG", "POD_"))}
        for entry in self.container["env"]:
            if "value" in entry:
                env[entry["name"]] = entry["value"]
            elif entry["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[entry["name"]] = self.name
        env.update(KUBECONFIG=self.kubeconfig, PYTHONUNBUFFERED="1")
        return env


@pytest.fixture
def run_operator(release: Release, kubectl: Kubectl, tmp_path: Path) -> Any:
    started: list[ChartOperator] = []
    kubeconfig = kubectl.token_kubeconfig(release.operator_sa, tmp_path / "operator.kubeconfig")

    def run(pod_name: str) -> ChartOperator:
        op = ChartOperator(release, kubeconfig, tmp_path, pod_name)
        started.append(op)
        op.start()
        return op

    yield run
    for op in started:
        op.stop()


def problems(op: ChartOperator) -> list[str]:
    words = ("Forbidden", "forbidden", " 403", "Not enough permissions", "Traceback")
    return [line for line in op.log.read_text().splitlines() if any(w in line for w in words)]


def submit(kubectl: Kubectl, namespace: str) -> str:
    name = f"sj-{uuid.uuid4().hex[:6]}"
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(scoringjob(name)))
    return name


def test_operator_runs_on_the_charts_rbac(release: Release, kubectl: Kubectl, run_operator: Any) -> None:
    """One operator (the chart's args + env + ServiceAccount) turns a ScoringJob into its ConfigMap, Service and a
    driver pod running as the chart's driver ServiceAccount, admitted by Pod Security "restricted"; no 403 anywhere."""
    op = run_operator(f"{release.variant}-operator-0")
    for ns in release.job_namespaces:
        name = submit(kubectl, ns)
        pod = wait_for(f"driver pod of {ns}/{name}", lambda ns=ns, name=name: json.loads(kubectl(
            "-n", ns, "get", "pod", f"{name}-driver-1", "-o", "json", check=False).stdout or "null"))
        assert pod["spec"]["serviceAccountName"] == release.driver_sa_name
        env = {e["name"]: e.get("value") for e in operator_container(release.docs)["env"]}
        assert pod["spec"]["containers"][0]["image"] == env["TFSCORE_RUNTIME_IMAGE"]
        kubectl("-n", ns, "get", f"configmap/{name}-spec-1", f"service/{name}-driver", f"networkpolicy/{name}-pods")
        wait_for(f"{name} status", lambda ns=ns, name=name: json.loads(kubectl(
            "-n", ns, "get", "scoringjob", name, "-o", "json").stdout).get("status", {}).get("phase"))
    assert not problems(op), "\n".join(problems(op))


def peers(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return json.loads(kubectl("-n", namespace, "get", "kopfpeering", name, "-o", "json").stdout).get("status") or {}


def paused(log: str) -> bool:
    """An operator's state from its log. With a named peering (--peering) kopf starts paused until it has seen the
    peers, logs "Resuming operations" when none outranks it, and "Pausing operations in favour of" when one appears."""
    lines = [line for line in log.splitlines() if "Pausing operations" in line or "Resuming operations" in line]
    return not lines or "Pausing operations" in lines[-1]


def driver_pod_of(kubectl: Kubectl, namespace: str, name: str) -> bool:
    return kubectl("-n", namespace, "get", "pod", f"{name}-driver-1", check=False).returncode == 0


@pytest.mark.parametrize("release", ["all"], indirect=True)  # the release with replicas: 2
def test_replicas_one_leads_and_a_standby_takes_over(release: Release, kubectl: Kubectl, run_operator: Any) -> None:
    """replicas > 1 as rendered (no --standalone): the operators meet in the chart's KopfPeering objects with the
    chart's RBAC; the highest priority serves, the other pauses in its favour, and takes over when the leader stops."""
    assert release.deployment["spec"]["replicas"] == 2 and "--standalone" not in operator_container(release.docs)["args"]
    ops = {op.name: op for op in (run_operator(f"{release.variant}-operator-{i}") for i in (1, 2))}
    ns = release.job_namespaces[0]
    peering = one(release.docs, "KopfPeering", "", ns)["metadata"]["name"]
    assert f"--peering={peering}" in operator_container(release.docs)["args"]  # the release's own, not kopf's "default"
    status = wait_for(f"both operators in KopfPeering {ns}/{peering}",
                              lambda: set(ops) <= set(peers(kubectl, ns, peering)) and peers(kubectl, ns, peering))
    leader = max(ops, key=lambda pod: status[pod]["priority"])
    standby = next(pod for pod in ops if pod != leader)
    wait_for(f"the leader {leader} to serve", lambda: paused(ops[leader].log.read_text()) is False)
    wait_for(f"{standby} to stand by for {leader}", lambda: paused(ops[standby].log.read_text()))

    first = submit(kubectl, ns)
    wait_for(f"the leader {leader} to start {first}", lambda: driver_pod_of(kubectl, ns, first))

    ops[leader].stop()
    wait_for(f"{standby} to resume", lambda: "Resuming operations" in ops[standby].log.read_text())
    second = submit(kubectl, ns)
    wait_for(f"the standby {standby} to start {second}", lambda: driver_pod_of(kubectl, ns, second))
    assert paused(ops[standby].log.read_text()) is False
    for op in ops.values():
        assert not problems(op), "\n".join(problems(op))


def test_upgrade_then_uninstall_keeps_the_crds(helm: Helm, kubectl: Kubectl, kubeconfig: str, crds: None,
                                              namespaces: Any) -> None:
    """The documented path: CRDs by server-side apply, `helm upgrade` for the rest (here 1 -> 2 replicas adds the
    peering object and the PDB); `helm uninstall` removes the release's objects, never the CRDs."""
    ns = namespaces("tfs-chart-upgrade")
    helm.install("up", ns, kubeconfig)
    assert kubectl("-n", ns, "get", "kopfpeering", "up-tfscore", check=False).returncode != 0
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    helm.run("upgrade", "up", str(CHART), "-n", ns, "--reuse-values", "--set", "replicas=2", kubeconfig=kubeconfig)
    kubectl("-n", ns, "get", "kopfpeering/up-tfscore", "poddisruptionbudget/up-tfscore-operator")
    args = json.loads(kubectl("-n", ns, "get", "deployment/up-tfscore-operator", "-o", "json").stdout)[
        "spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--standalone" not in args

    helm.run("uninstall", "up", "-n", ns, "--wait", kubeconfig=kubeconfig)
    left = kubectl("get", "-A", "-o", "name", "-l", "app.kubernetes.io/instance=up",
                   "deployments,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,services,"
                   "kopfpeerings,poddisruptionbudgets").stdout.split()
    assert left == []
    kubectl("get", "crd", "scoringjobs.tfscore.io", "scoringschedules.tfscore.io", "kopfpeerings.kopf.dev",
            "clusterkopfpeerings.kopf.dev")
