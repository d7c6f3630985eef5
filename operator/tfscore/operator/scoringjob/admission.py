"""The chart's two ValidatingAdmissionPolicies, generated from the policy modules (`tfscore admission` →
charts/tfscore/files/admission-policies.yaml; a unit test fails when the file drifted, like the CRDs).

- `scoringJobs`: every rule of policy.py / policy_cel.py on ScoringJob CREATE (and UPDATE that changes the spec), the
  namespace's ScoringPolicy as the parameter; plus what only the API server can check: that the job's creator may read
  each Secret, ConfigMap and claim the spec names. The same on a ScoringSchedule's jobTemplate.spec (messages name
  spec.jobTemplate.spec.…), so a schedule is refused when it is written, not run by run; its runs, created by the
  operator, pass the same rules again, all but the reference checks (the operator's rights are not the author's; the
  chart names the operator's account: `operatorAccount`).
- `driver`: what a Spark driver's ServiceAccount may write. RBAC cannot say "only your own pod" (resourceNames cannot
  be templated per pod), but the driver's token is bound to its pod and names it in the request
  (userInfo.extra authentication.kubernetes.io/pod-uid): so the driver may create and delete only pods it controls (its
  executors, ownerReference to its pod), shaped like executors (no service-account token, allowed images and volume
  types, no host namespaces), and change nothing but its own pod's progress annotation. The chart adds the
  matchConditions naming the driver accounts and the `images` and `volumeTypes` variables, from its values. No
  parameter object: the API server resolves a binding's parameter before it evaluates matchConditions, so a missing
  ScoringPolicy would refuse every pod write in that namespace, by anyone (measured on v1.33).
"""

from __future__ import annotations

from typing import Any

import yaml

from tfscore.api import common, contract, scoringjob, scoringpolicy, scoringschedule
from tfscore.operator.scoringjob import isolation
from tfscore.operator.scoringjob.policy import CHECKS, MAX_REFERENCES, TOKEN_VOLUME
from tfscore.operator.scoringjob.policy_cel import CEL, VARIABLES, image_ok, literal, reference_rules

PARAM_KIND = {"apiVersion": common.API_VERSION, "kind": scoringpolicy.KIND}
POD_UID = "authentication.kubernetes.io/pod-uid"
POD_NAME = "authentication.kubernetes.io/pod-name"
CHART_VARIABLES = ("images", "volumeTypes")  # the chart defines these first (the union of every namespace's lists)
SCORINGJOB_CHART_VARIABLES = ("operatorAccount",)  # and this one first in the scoringJobs policy


def _validation(expression: str, message: str) -> dict[str, str]:
    return {"expression": expression, "messageExpression": message, "reason": "Invalid"}


def scoringjob_policy() -> dict[str, Any]:
    rules = [(name, *CEL[name]) for name, _ in CHECKS] + reference_rules(MAX_REFERENCES)
    return {
        "failurePolicy": "Fail",
        "paramKind": dict(PARAM_KIND),
        "matchConstraints": {"resourceRules": [{
            "apiGroups": [common.GROUP], "apiVersions": [common.VERSION], "operations": ["CREATE", "UPDATE"],
            "resources": [scoringjob.PLURAL, scoringschedule.PLURAL]}]},
        # An edit that leaves the spec alone (labels, the operator's TTL delete is not an UPDATE) is never refused.
        "matchConditions": [{"name": "spec-changed",
                             "expression": "request.operation == 'CREATE' || object.spec != oldObject.spec"}],
        "variables": [{"name": name, "expression": expression} for name, expression in VARIABLES],
        "validations": [_validation(e.replace("{max}", str(MAX_REFERENCES)),
                                    f"variables.field + ({m.replace('{max}', str(MAX_REFERENCES))})")
                        for _, e, m in rules],
    }


_TARGET = "request.operation == 'DELETE' ? oldObject : object"
_WHAT = ("request.kind.kind + ' ' + (has(variables.target.metadata.name) ? variables.target.metadata.name : "
         "request.name)")  # request.name is empty in a DELETE of a collection
_EXECUTOR_VOLUME_OK = (
    f"(has(v.name) && string(v.name) in {literal(isolation.OPERATOR_VOLUMES)}) || (v.map(k, k).all(k, k == 'name' || "
    f"k in variables.volumeTypes) && ('{TOKEN_VOLUME}' in variables.volumeTypes || !has(v.projected) || "
    f"!has(v.projected.sources) || !v.projected.sources.exists(s, has(s.serviceAccountToken))))")
_ANNOTATIONS = ("(has({o}.metadata.annotations) ? {o}.metadata.annotations : {{}})")


def _same(field: str, empty: str) -> str:
    return (f"(has(object.metadata.{field}) ? object.metadata.{field} : {empty}) == "
            f"(has(oldObject.metadata.{field}) ? oldObject.metadata.{field} : {empty})")


DRIVER_VARIABLES: list[tuple[str, str]] = [
    ("podUid", f"'{POD_UID}' in request.userInfo.extra ? request.userInfo.extra['{POD_UID}'][0] : ''"),
    ("podName", f"'{POD_NAME}' in request.userInfo.extra ? request.userInfo.extra['{POD_NAME}'][0] : ''"),
    ("target", _TARGET),
    ("ownedBySelf", "has(variables.target.metadata.ownerReferences) && variables.target.metadata.ownerReferences"
                    ".exists(r, r.kind == 'Pod' && r.uid == variables.podUid)"),
    ("creatingPod", "request.operation == 'CREATE'"),
    ("containers", "variables.creatingPod ? object.spec.containers + (has(object.spec.initContainers) ? "
                   "object.spec.initContainers : []) : []"),
    ("podVolumes", "variables.creatingPod && has(object.spec.volumes) ? object.spec.volumes : []"),
    ("newAnnotations", _ANNOTATIONS.format(o="object")),
    ("oldAnnotations", _ANNOTATIONS.format(o="oldObject")),
]

_PROGRESS = contract.PROGRESS_ANNOTATION
DRIVER_VALIDATIONS: list[tuple[str, str]] = [
    ("variables.podUid != ''",
     "'the Spark driver account ' + request.userInfo.username + ' may write only with its pod-bound token'"),
    ("request.operation == 'UPDATE' || variables.ownedBySelf",
     f"{_WHAT} + ': a driver may create and delete only objects its own pod ' + variables.podName + ' controls "
     "(an ownerReference to that pod)'"),
    (f"request.operation != 'UPDATE' || (object.metadata.uid == variables.podUid && "
     f"object.spec == oldObject.spec && {_same('labels', '{}')} && {_same('ownerReferences', '[]')} && "
     f"{_same('finalizers', '[]')} && variables.newAnnotations.all(k, k == '{_PROGRESS}' || "
     f"(k in variables.oldAnnotations && variables.oldAnnotations[k] == variables.newAnnotations[k])) && "
     f"variables.oldAnnotations.all(k, k == '{_PROGRESS}' || k in variables.newAnnotations))",
     f"{_WHAT} + ': a driver may change only the {_PROGRESS} annotation of its own pod ' + variables.podName"),
    ("!variables.creatingPod || (has(object.spec.automountServiceAccountToken) && "
     "!object.spec.automountServiceAccountToken && (!has(object.spec.serviceAccountName) || "
     "object.spec.serviceAccountName == 'default'))",
     f"{_WHAT} + ': pods a driver creates run without a service-account token (automountServiceAccountToken: "
     "false, the default account)'"),
    ("!variables.creatingPod || !((has(object.spec.hostNetwork) && object.spec.hostNetwork) || "
     "(has(object.spec.hostPID) && object.spec.hostPID) || (has(object.spec.hostIPC) && object.spec.hostIPC))",
     f"{_WHAT} + ': pods a driver creates may not use host namespaces'"),
    (f"variables.podVolumes.all(v, {_EXECUTOR_VOLUME_OK})",
     f"{_WHAT} + ': volume ' + variables.podVolumes.filter(v, !({_EXECUTOR_VOLUME_OK}))[0].name + ' has a type the "
     "ScoringPolicy does not allow (allowed: ' + variables.volumeTypes.join(', ') + ')'"),
    (f"variables.containers.all(c, {image_ok('c.image')})",
     f"{_WHAT} + ': image ' + variables.containers.filter(c, !{image_ok('c.image')})[0].image + ' is not an allowed "
     "image'"),
]


def driver_policy() -> dict[str, Any]:
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE", "DELETE"],
            "resources": ["pods"]}]},  # the driver's Role has nothing else to write
        "variables": [{"name": name, "expression": expression} for name, expression in DRIVER_VARIABLES],
        "validations": [_validation(e, m) for e, m in DRIVER_VALIDATIONS],
    }


class _Dumper(yaml.SafeDumper):
    """CEL as literal blocks: no YAML quoting inside the expressions (they are full of quotes)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if ("'" in value or '"' in value) and not value.endswith(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_yaml() -> str:
    header = ("# Generated by `tfscore admission` (make crd) from operator/tfscore/operator/scoringjob/policy*.py and "
              "admission.py.\n# Do not edit by hand: charts/tfscore/templates/admission-policy.yaml reads it.\n")
    body = {"scoringJobs": scoringjob_policy(), "driver": driver_policy()}
    return header + yaml.dump(body, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
