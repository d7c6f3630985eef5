"""The chart's ValidatingAdmissionPolicy on the real API server: `kubectl apply` itself refuses every attack of issue 11
with exactly the message the operator gives (policy.violations on the namespace's ScoringPolicy, as the API server
stores it), accepts the examples, checks that the job's creator may read the Secrets it names, and lets an admin open
a key or an image for one namespace. No operator runs here: this is the API server alone."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from harness.attacks import ATTACKS, ISSUE_FIRST, ISSUE_SPEC, oversized_conf
from harness.common import ROOT, wait_for
from harness.kube import Helm, Kubectl
from harness.operator_process import FAKE_IMAGE
from harness.scoringjobs import scoringjob
from tfscore.api.scoringjob import ScoringJob
from tfscore.api.scoringpolicy import ScoringPolicySpec
from tfscore.operator.scoringjob import policy

RELEASE, RELEASE_NS = "adm", "tfs-chart-adm"
PLAIN, OPENED, BARE = "tfs-adm-plain", "tfs-adm-opened", "tfs-adm-bare"
TEAM_IMAGE = "registry.example.com/team-b/runtime@sha256:" + "c" * 64
OPENING = {"images": ["registry.example.com/team-b/*"], "sparkConf": {"allow": ["spark.sql.catalog.*"]}}


@pytest.fixture(scope="module")
def admitted(helm: Helm, kubectl: Kubectl, kubeconfig: str, crds: None, namespaces: Any) -> Iterator[str]:
    for ns in (RELEASE_NS, PLAIN, OPENED, BARE):
        namespaces(ns)
    repo, digest = FAKE_IMAGE.split("@")
    helm.install(RELEASE, RELEASE_NS, kubeconfig, {
        "watchNamespaces": [PLAIN, OPENED, BARE], "policy": {"namespaces": {OPENED: OPENING}},
        "runtime": {"image": {"repository": repo, "digest": digest}, "pullPolicy": "Never", "runAsUser": 1000}})
    kubectl("-n", BARE, "delete", "scoringpolicy", f"{RELEASE}-tfscore")  # a bound namespace without its policy
    # The API server compiles a new policy asynchronously: wait until it refuses a known attack.
    wait_for("the admission policy in force", lambda: refusal(kubectl, PLAIN, scoringjob("probe", image="x/y:z")),
             timeout=30)
    yield RELEASE
    helm.run("uninstall", RELEASE, "-n", RELEASE_NS, check=False, kubeconfig=kubeconfig)


def refusal(kubectl: Kubectl, ns: str, body: dict[str, Any], *extra: str) -> str | None:
    """None when the API server accepts `body` (server-side dry run), else its message."""
    proc = kubectl("-n", ns, "create", "--dry-run=server", "-f", "-", *extra, input=json.dumps(body), check=False)
    if proc.returncode == 0:
        return None
    return proc.stderr.strip().split("denied request: ", 1)[-1]


def operator_says(kubectl: Kubectl, ns: str, body: dict[str, Any]) -> str | None:
    """What the operator would say: the policy's Python rules on the namespace's ScoringPolicy as stored."""
    stored = json.loads(kubectl("-n", ns, "get", "scoringpolicy", f"{RELEASE}-tfscore", "-o", "json").stdout)
    job = ScoringJob.model_validate({**body, "metadata": {"name": body["metadata"]["name"], "namespace": ns}})
    found = policy.violations(job.spec, ScoringPolicySpec.model_validate(stored["spec"]))
    return found[0] if found else None


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_kubectl_refuses_every_attack_with_the_operators_message(admitted: str, kubectl: Kubectl,
                                                                  attack: str) -> None:
    spec, expected = ATTACKS[attack]
    body = scoringjob(attack, **copy.deepcopy(spec))
    message = refusal(kubectl, PLAIN, body)
    assert message is not None, f"{attack} accepted"
    assert expected in message, message
    assert message == operator_says(kubectl, PLAIN, body), "the API server and the operator must agree"


def test_the_issues_manifest_is_refused(admitted: str, kubectl: Kubectl) -> None:
    body = scoringjob("issue", **copy.deepcopy(ISSUE_SPEC))
    message = refusal(kubectl, PLAIN, body)
    assert message is not None and message.startswith(ISSUE_FIRST) and message == operator_says(kubectl, PLAIN, body)


def test_the_examples_and_plain_jobs_are_accepted(admitted: str, kubectl: Kubectl) -> None:
    example = next(d for d in yaml.safe_load_all((ROOT / "examples" / "e2e-job.yaml").read_text())
                   if d and d["kind"] == "ScoringJob")
    assert refusal(kubectl, PLAIN, example) is None
    assert refusal(kubectl, PLAIN, scoringjob("plain", envFrom=[{"prefix": "AWS_", "secretRef": {"name": "s3"}}],
                                              image=FAKE_IMAGE, serviceAccountName="tfscore-driver")) is None


def test_sizes(admitted: str, kubectl: Kubectl) -> None:
    """1.2 MB in one value: the CRD's bounds refuse it. Within every bound but too big a ConfigMap: the API server
    cannot compute a ConfigMap, so it accepts, and the operator refuses it (operator tier)."""
    message = refusal(kubectl, PLAIN, scoringjob("huge", sparkConf={"spark.tfscore.pad": "x" * 1_200_000}))
    assert message is not None and "spec.sparkConf.spark.tfscore.pad: Too long" in message
    assert refusal(kubectl, PLAIN, scoringjob("wide", sparkConf=oversized_conf())) is None


def test_an_admin_opens_an_image_and_a_key_for_one_namespace(admitted: str, kubectl: Kubectl) -> None:
    body = scoringjob("team", image=TEAM_IMAGE, sparkConf={"spark.sql.catalog.lake": "x.Catalog"})
    assert refusal(kubectl, OPENED, body) is None
    assert refusal(kubectl, PLAIN, body) == operator_says(kubectl, PLAIN, body) is not None
    reserved = scoringjob("team", sparkConf={"spark.master": "local"})
    assert refusal(kubectl, OPENED, reserved).endswith("reserved: the operator sets this key")


def test_a_namespace_without_its_policy_refuses_scoringjobs(admitted: str, kubectl: Kubectl) -> None:
    message = refusal(kubectl, BARE, scoringjob("bare"))
    assert message is not None and "no params found" in message, message


def test_an_edit_that_breaks_the_policy_is_refused_one_that_leaves_the_spec_is_not(admitted: str,
                                                                                   kubectl: Kubectl) -> None:
    name = f"edit-{uuid.uuid4().hex[:6]}"
    kubectl("-n", PLAIN, "create", "-f", "-", input=json.dumps(scoringjob(name)))
    bad = kubectl("-n", PLAIN, "patch", "scoringjob", name, "--type=merge", "-p",
                  json.dumps({"spec": {"sparkConf": {"spark.jars": "https://example.com/x.jar"}}}), check=False)
    assert bad.returncode != 0 and 'spec.sparkConf["spark.jars"]: denied by the ScoringPolicy' in bad.stderr
    kubectl("-n", PLAIN, "label", "scoringjob", name, "team=b")
    kubectl("-n", PLAIN, "delete", "scoringjob", name)


def test_a_job_may_name_only_secrets_its_creator_may_read(admitted: str, kubectl: Kubectl) -> None:
    """A tenant allowed to create ScoringJobs and to read the Secret "mine" only: naming "theirs" (in a volume, an
    env reference or envFrom) is refused; naming "mine" is not. Checked by the API server only (the operator never
    learns who created a job)."""
    ns, user = PLAIN, f"tenant-{uuid.uuid4().hex[:6]}"
    kubectl("-n", ns, "create", "role", user, "--verb=create", "--resource=scoringjobs.tfscore.io")
    kubectl("-n", ns, "create", "role", f"{user}-mine", "--verb=get", "--resource=secrets", "--resource-name=mine")
    for role in (user, f"{user}-mine"):
        kubectl("-n", ns, "create", "rolebinding", role, f"--role={role}", f"--user={user}")
    as_tenant = f"--as={user}"
    cases = {
        "volume": {"volumes": [{"name": "s", "secret": {"secretName": "{}"}}]},
        "env": {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "{}", "key": "k"}}}]},
        "env-from": {"envFrom": [{"prefix": "S_", "secretRef": {"name": "{}"}}]},
        "projected": {"volumes": [{"name": "p", "projected": {"sources": [{"secret": {"name": "{}"}}]}}]},
    }
    for case, spec in cases.items():
        def of(secret: str, spec: dict = spec, case: str = case) -> dict[str, Any]:
            return scoringjob(f"ref-{case}", **json.loads(json.dumps(spec).replace("{}", secret)))
        assert refusal(kubectl, ns, of("mine"), as_tenant) is None, case
        message = refusal(kubectl, ns, of("theirs"), as_tenant)
        assert message == ("spec: Secret theirs is not readable by you (get secrets/theirs): a ScoringJob may name "
                           "only Secrets, ConfigMaps and claims its creator may read"), (case, message)


# ---------------------------------------------------------------- ScoringSchedules: not a way around the policy


def schedule(name: str, **spec: Any) -> dict[str, Any]:
    """A ScoringSchedule whose jobTemplate.spec is scoringjob(name, **spec)'s spec."""
    return {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringSchedule", "metadata": {"name": name},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": scoringjob(name, **spec)["spec"]}}}


def run_of_a_schedule(name: str, **spec: Any) -> dict[str, Any]:
    """A ScoringJob as the operator creates it for a schedule: its controller ownerReference names the schedule."""
    body = scoringjob(name, **spec)
    body["metadata"]["ownerReferences"] = [{"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringSchedule",
                                            "name": "s", "uid": str(uuid.uuid4()), "controller": True}]
    return body


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_schedule_is_refused_for_any_attack_in_its_template(admitted: str, kubectl: Kubectl, attack: str) -> None:
    spec, expected = ATTACKS[attack]
    message = refusal(kubectl, PLAIN, schedule(attack, **copy.deepcopy(spec)))
    assert message is not None, f"{attack} accepted in a ScoringSchedule's jobTemplate"
    said = operator_says(kubectl, PLAIN, scoringjob(attack, **copy.deepcopy(spec)))
    assert said is not None and message == f"spec.jobTemplate.{said}", message
    assert refusal(kubectl, PLAIN, schedule(f"{attack}-ok")) is None


def test_a_schedules_references_are_its_authors_and_its_runs_are_checked_again(admitted: str,
                                                                              kubectl: Kubectl) -> None:
    """The schedule is checked against its author's rights to the Secrets it names; the runs the operator creates for
    it are not checked against the operator's (it reads no Secret), but every other rule still applies to them."""
    ns, user = PLAIN, f"author-{uuid.uuid4().hex[:6]}"
    kubectl("-n", ns, "create", "role", user, "--verb=create", "--resource=scoringschedules.tfscore.io",
            "--resource=scoringjobs.tfscore.io")
    kubectl("-n", ns, "create", "role", f"{user}-mine", "--verb=get", "--resource=secrets", "--resource-name=mine")
    for role in (user, f"{user}-mine"):
        kubectl("-n", ns, "create", "rolebinding", role, f"--role={role}", f"--user={user}")
    as_author = f"--as={user}"
    refs = {"theirs": {"envFrom": [{"prefix": "S_", "secretRef": {"name": "theirs"}}]},
            "mine": {"envFrom": [{"prefix": "S_", "secretRef": {"name": "mine"}}]}}
    assert refusal(kubectl, ns, schedule("mine", **refs["mine"]), as_author) is None
    assert refusal(kubectl, ns, schedule("theirs", **refs["theirs"]), as_author) == (
        "spec.jobTemplate.spec: Secret theirs is not readable by you (get secrets/theirs): a ScoringJob may name only "
        "Secrets, ConfigMaps and claims its creator may read")
    deployment = json.loads(kubectl("-n", RELEASE_NS, "get", "deployment", "-o", "json").stdout)["items"][0]
    as_operator = f"--as=system:serviceaccount:{RELEASE_NS}:{deployment['spec']['template']['spec']['serviceAccountName']}"
    assert refusal(kubectl, ns, run_of_a_schedule("run", **refs["theirs"]), as_operator) is None
    hostpath, expected = ATTACKS["hostpath-volume"]
    assert expected in (refusal(kubectl, ns, run_of_a_schedule("run", **hostpath), as_operator) or "")
    not_a_run = refusal(kubectl, ns, scoringjob("run", **refs["theirs"]), as_operator)
    assert not_a_run is not None and not_a_run.startswith("spec: Secret theirs is not readable by you"), not_a_run
    forged = refusal(kubectl, ns, run_of_a_schedule("run", **refs["theirs"]), as_author)
    assert forged is not None and forged.startswith("spec: Secret theirs is not readable by you"), forged
