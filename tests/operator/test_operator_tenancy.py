"""Issue 11 on the operator tier, without the chart's admission policy: the operator alone refuses every attack (Failed,
reason Invalid, the field named, nothing created), reads the namespace's ScoringPolicy, isolates each job (auth Secret,
NetworkPolicy, immutable ConfigMaps) and trusts only what it created (the bound spec's hash, the driver pod's uid)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from harness.attacks import ATTACKS, ISSUE_FIRST, ISSUE_SPEC, oversized_conf
from harness.common import wait_for
from harness.operator_process import Operator
from harness.schedules import Schedules, scoringschedule
from harness.scoringjobs import Cluster, scoringjob

RESULT = {"rowsIn": 5, "rowsOut": 5, "seconds": 1.0, "rowsPerSecond": 5.0, "outputUri": "s3a://out/"}


def invalid(k8s: Cluster, name: str, timeout: float = 20) -> str:
    st = k8s.wait_phase(name, "Failed", timeout=timeout)
    cond = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert cond["reason"] == "Invalid", cond
    return cond["message"]


@pytest.fixture(scope="module")
def attacked(core: Any, custom: Any, operator: Operator) -> Iterator[tuple[Cluster, dict[str, str]]]:
    """Every attack submitted at once in one namespace (the API server has only the CRD: no admission policy)."""
    ns = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    core.create_namespaced_service_account(ns, {"metadata": {"name": "tfscore-driver"}})
    k8s = Cluster(core, custom, ns)
    names = {}
    for attack, (spec, _) in ATTACKS.items():
        names[attack] = attack
        k8s.create(scoringjob(attack, **copy.deepcopy(spec)))  # accepted by the API server (on main: and run)
    yield k8s, names
    core.delete_namespace(ns)


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_the_operator_refuses_every_attack(attacked: tuple[Cluster, dict[str, str]], attack: str) -> None:
    k8s, names = attacked
    message = invalid(k8s, names[attack])
    assert ATTACKS[attack][1] in message.splitlines()[0], message
    assert not k8s.driver_pods(names[attack]), "nothing created"
    assert not [c for c in k8s.core.list_namespaced_config_map(k8s.ns).items
                if c.metadata.name.startswith(f"{attack}-spec")]
    k8s.wait_event(names[attack], "Invalid")


def test_the_issues_manifest_is_refused_on_every_count(k8s: Cluster) -> None:
    k8s.create(scoringjob("issue", **copy.deepcopy(ISSUE_SPEC)))
    lines = invalid(k8s, "issue").splitlines()
    assert lines[0].startswith(ISSUE_FIRST)
    for field in ("spec.serviceAccountName", "spec.sparkConf", "spec.volumes[0]", "spec.input.uri"):
        assert any(line.startswith(field) for line in lines), (field, lines)


def test_oversized_specs_are_refused_by_the_crd_or_the_operator(k8s: Cluster) -> None:
    # 1.2 MB in one value: the CRD's maxLength refuses it at once (main stored it and left the job stuck).
    with pytest.raises(ApiException) as err:
        k8s.create(scoringjob("huge", sparkConf={"spark.tfscore.pad": "x" * 1_200_000}))
    assert err.value.status == 422 and "spec.sparkConf.spark.tfscore.pad" in err.value.body
    # Within every bound, but its ConfigMap (the spec about three times) would pass 900 KiB: Invalid.
    k8s.create(scoringjob("wide", sparkConf=oversized_conf()))
    message = invalid(k8s, "wide")
    assert message.startswith("spec: the job's ConfigMap would be ") and "over the 900 KiB limit" in message


def _policy(k8s: Cluster, spec: dict[str, Any]) -> None:
    body = {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringPolicy", "metadata": {"name": "tfscore"},
            "spec": spec}
    try:
        k8s.custom.create_namespaced_custom_object("tfscore.io", "v1alpha1", k8s.ns, "scoringpolicies", body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        k8s.custom.patch_namespaced_custom_object("tfscore.io", "v1alpha1", k8s.ns, "scoringpolicies", "tfscore",
                                                  {"spec": spec})


def test_the_namespaces_scoring_policy_opens_and_closes(k8s: Cluster) -> None:
    """An admin opens an image and a key family for this namespace (the API server fills in the other defaults);
    later makes it an allowlist. Each job is judged by the policy in force when it is first admitted."""
    image = "registry.example.com/team-a/runtime@sha256:" + "c" * 64
    _policy(k8s, {"images": ["registry.example.com/team-a/*"], "serviceAccounts": ["tfscore-driver"],
                  "sparkConf": {"allow": ["spark.sql.catalog.*"]}})
    k8s.create(scoringjob("opened", image=image, sparkConf={"spark.sql.catalog.lake": "x.Catalog"}))
    pod = k8s.wait_pod("opened")
    assert pod.spec.containers[0].image == image
    _policy(k8s, {"images": [], "serviceAccounts": ["tfscore-driver"], "sparkConf": {"mode": "allowlist"}})
    k8s.create(scoringjob("closed", sparkConf={"spark.sql.shuffle.partitions": "8"}))
    assert invalid(k8s, "closed") == \
        "spec.sparkConf[\"spark.sql.shuffle.partitions\"]: not among the ScoringPolicy's allowed keys"


def test_each_job_is_isolated(k8s: Cluster) -> None:
    """Auth Secret (generated name, owned, never in env), NetworkPolicy (the real API server accepted its selectors),
    an immutable ConfigMap per attempt, and the status records what the operator made."""
    uid = k8s.create(scoringjob("iso"))["metadata"]["uid"]
    pod = k8s.wait_pod("iso")
    st = wait_for("the status records the pod", lambda: (s := k8s.status("iso")).get("driverPodUid") and s)
    assert st["driverPodUid"] == pod.metadata.uid
    secret = k8s.core.read_namespaced_secret(st["authSecret"], k8s.ns)
    assert secret.metadata.name.startswith("iso-auth-") and secret.immutable
    assert [r.uid for r in secret.metadata.owner_references] == [uid]
    assert len(base64.b64decode(secret.data["spark-auth-secret"])) == 32
    np = k8s.networking.read_namespaced_network_policy("iso-pods", k8s.ns)
    assert np.spec.pod_selector.match_labels == {"tfscore.io/job": "iso"} and np.spec.policy_types == ["Ingress"]
    assert [f.pod_selector.match_labels for f in np.spec.ingress[0]._from] == [{"tfscore.io/job": "iso"}]
    assert [r.uid for r in np.metadata.owner_references] == [uid]
    cm = k8s.core.read_namespaced_config_map("iso-spec-1", k8s.ns)
    assert cm.immutable is True
    assert st["specHash"] == "sha256:" + hashlib.sha256(cm.data["job.json"].encode()).hexdigest()
    assert "spark.authenticate=true" in cm.data["spark.properties"]
    assert "spark.network.crypto.enabled=true" in cm.data["spark.properties"]
    assert "spark.ui.killEnabled=false" in cm.data["spark.properties"]
    volumes = {v.name: v for v in pod.spec.volumes}
    assert volumes["tfscore-auth"].secret.secret_name == st["authSecret"]
    env = {e.name: e for e in pod.spec.containers[0].env}
    assert st["authSecret"] not in json.dumps([e.to_dict() for e in pod.spec.containers[0].env])
    digest = "sha256:" + hashlib.sha256(json.dumps(dict(sorted(cm.data.items())), separators=(",", ":"))
                                        .encode()).hexdigest()
    assert env["TFSCORE_SPEC_SHA256"].value == digest, "the runtime can check what it mounted"
    with pytest.raises(ApiException) as err:  # immutable: nobody edits what a run reads
        k8s.core.patch_namespaced_config_map("iso-spec-1", k8s.ns, {"data": {"job.json": "{}"}})
    assert err.value.status == 422
    k8s.delete("iso")
    wait_for("the Secret and NetworkPolicy garbage-collected", lambda: not [
        s for s in k8s.core.list_namespaced_secret(k8s.ns).items if s.metadata.name.startswith("iso-auth-")]
        and not k8s.networking.list_namespaced_network_policy(k8s.ns).items, timeout=30)


def test_a_replaced_job_json_is_refused(k8s: Cluster, operator: Operator) -> None:
    """Someone with configmaps rights replaces a running job's (immutable) ConfigMap with another spec: the operator,
    reading it again after a restart, refuses it (its hash is not status.specHash) and stops the run."""
    k8s.create(scoringjob("tamper", batchSize=100))
    k8s.wait_pod("tamper")
    k8s.run_pod("tamper-driver-1")
    wait_for("specHash recorded", lambda: k8s.status("tamper").get("specHash"))
    k8s.wait_phase("tamper", "Running")
    operator.kill()
    try:
        cm = k8s.core.read_namespaced_config_map("tamper-spec-1", k8s.ns)
        doc = json.loads(cm.data["job.json"])
        doc["spec"]["sparkConf"] = {"spark.driver.extraJavaOptions": "-XX:OnOutOfMemoryError=/bin/sh"}
        forged = {"metadata": {"name": cm.metadata.name, "labels": cm.metadata.labels,
                               "ownerReferences": [r.to_dict() for r in cm.metadata.owner_references]},
                  "immutable": True, "data": {**cm.data, "job.json": json.dumps(doc)}}
        forged["metadata"]["ownerReferences"] = [{"apiVersion": r["api_version"], "kind": r["kind"], "name": r["name"],
                                                  "uid": r["uid"]} for r in forged["metadata"]["ownerReferences"]]
        k8s.core.delete_namespaced_config_map(cm.metadata.name, k8s.ns)
        k8s.core.create_namespaced_config_map(k8s.ns, forged)
    finally:
        operator.start()
    st = k8s.wait_phase("tamper", "Failed")
    cond = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert cond["reason"] == "SpecTampered" and "differs from status.specHash" in cond["message"]
    wait_for("the run stopped", lambda: not [p for p in k8s.driver_pods("tamper")
                                             if not p.metadata.deletion_timestamp])


def test_a_pod_under_the_drivers_name_is_not_adopted(k8s: Cluster) -> None:
    """The driver pod deleted and another pod created under its name, labels and owner: the operator sees its own pod
    gone (attempt failed), never takes the impostor's progress or result, and runs attempt 2."""
    k8s.create(scoringjob("imp", backoffLimit=1))
    real = k8s.wait_pod("imp")
    wait_for("uid recorded", lambda: k8s.status("imp").get("driverPodUid") == real.metadata.uid)
    impostor = k8s.core.api_client.sanitize_for_serialization(real)
    impostor["metadata"] = {k: impostor["metadata"][k] for k in ("name", "labels", "ownerReferences")}
    impostor.pop("status", None)
    k8s.core.delete_namespaced_pod("imp-driver-1", k8s.ns, grace_period_seconds=0)
    wait_for("the real pod gone", lambda: not [p for p in k8s.driver_pods("imp") if p.metadata.uid == real.metadata.uid])
    k8s.core.create_namespaced_pod(k8s.ns, impostor)
    k8s.annotate_progress("imp-driver-1", {"rowsScored": 999, "tasksDone": 9, "tasksTotal": 9, "percent": 100})
    k8s.finish_pod("imp-driver-1", 0, json.dumps(RESULT))
    k8s.wait_pod("imp", 2)
    # the pod is created before the status that counts it is written
    wait_for("attempt 2 in the status", lambda: k8s.status("imp").get("attempts") == 2)
    st = k8s.status("imp")
    assert st["phase"] != "Succeeded" and st["attempts"] == 2 and st["failed"] == 1, st
    assert (st.get("progress") or {}).get("rowsScored") != 999


def test_a_schedules_runs_are_held_to_the_policy(schedules: Schedules, k8s: Cluster) -> None:
    """No admission policy here: the schedule is accepted, and the operator refuses its run like any ScoringJob."""
    hostpath, expected = ATTACKS["hostpath-volume"]
    schedules.create(scoringschedule("evil", template=copy.deepcopy(hostpath), concurrencyPolicy="Forbid"))
    run = schedules.wait_runs("evil", 1)[0]["metadata"]["name"]
    schedules.patch("evil", {"suspend": True})
    assert expected in invalid(k8s, run).splitlines()[0]
    assert not k8s.driver_pods(run), "nothing created"
