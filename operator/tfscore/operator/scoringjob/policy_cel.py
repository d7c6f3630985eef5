"""The ScoringPolicy's rules in CEL, for the chart's ValidatingAdmissionPolicy: the same rules as policy.py, under the
same names, with the same messages (a unit test keeps the names and order in step; the chart tier compares messages).

`variables.spec` is the ScoringJob's spec (defaults applied), or a ScoringSchedule's jobTemplate.spec (what each of its
runs will be: the rules refuse the schedule, not only each run), `params` the namespace's ScoringPolicy. CEL has no
functions of its own, so the small helpers here write the repeated sub-expressions out (a glob as a regex, the
canonical-path test, "at or below"); `variables` are computed once per request. Kubernetes' CEL has no stable map
order and no sort: a map's first offence is its smallest key (`.min()`), a list's its smallest index
(`.map(…).indexOf(true)`).
"""

from __future__ import annotations

import json

from tfscore.api.scoringjob import MAX_MODELS
from tfscore.operator.scoringjob import isolation
from tfscore.operator.scoringjob.policy import GPU_TAINT, TOKEN_VOLUME


def literal(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(v).replace('"', "'") for v in values) + "]"


def _re(x: str) -> str:
    """The glob `x` as an anchored regex (ScoringPolicy patterns hold only [A-Za-z0-9_.*-])."""
    return f"('^' + {x}.replace('.', '\\\\.').replace('*', '.*') + '$')"


def _canon(p: str) -> str:
    return (f"({p}.startsWith('/') && !{p}.contains('//') && !{p}.contains('/./') && !{p}.contains('/../') "
            f"&& !{p}.endsWith('/.') && !{p}.endsWith('/..'))")


def _trim(p: str) -> str:
    return f"({p}.endsWith('/') && size({p}) > 1 ? {p}.substring(0, size({p}) - 1) : {p})"


def _under(p: str, root: str) -> str:
    """`p` (trimmed) is `root` or lies below it."""
    return f"({root} == '/' || {p} == {root} || {p}.startsWith({root} + '/'))"


def optional(field: str, default: str = "[]", base: str = "params.spec") -> str:
    """`base.field` with has() guards down the dotted path (absent lists are not stored)."""
    parts = field.split(".")
    guards = " && ".join(f"has({base}.{'.'.join(parts[:i + 1])})" for i in range(len(parts)))
    return f"{guards} ? {base}.{field} : {default}"


def _local(u: str) -> str:
    return f"({u}.lowerAscii().startsWith('file:') || {u}.lowerAscii().startsWith('local://') || !{u}.contains('://'))"


def _path(u: str) -> str:
    return (f"({u}.lowerAscii().startsWith('file://') ? {u}.substring(7) : ({u}.lowerAscii().startsWith('local://') "
            f"? {u}.substring(8) : ({u}.lowerAscii().startsWith('file:') ? {u}.substring(5) : {u})))")


def _conflict(x: str, p: str) -> str:
    """A name `x` + anything could match the env pattern `p` (a trailing * or none)."""
    stem = f"{p}.substring(0, size({p}) - 1)"
    return f"({p}.endsWith('*') ? ({x}.startsWith({stem}) || {stem}.startsWith({x})) : {p}.startsWith({x}))"


def _mount_ok(p: str) -> str:
    t = _trim(p)
    return (f"({_canon(p)} && variables.mountPaths.exists(r, {_under(t, 'r')}) && "
            f"!variables.operatorPaths.exists(o, {_under(t, 'o')} || {_under('o', t)}))")


_V = "variables"
_REFS = [  # (resource, CEL list to take names from, CEL name expression) — policy.references() in the same order
    ("secrets", "variables.volumes.filter(v, has(v.secret) && has(v.secret.secretName))", "v.secret.secretName"),
    ("configmaps", "variables.volumes.filter(v, has(v.configMap) && has(v.configMap.name))", "v.configMap.name"),
    ("persistentvolumeclaims", "variables.volumes.filter(v, has(v.persistentVolumeClaim) && "
                               "has(v.persistentVolumeClaim.claimName))", "v.persistentVolumeClaim.claimName"),
    ("secrets", "variables.volumes.filter(v, has(v.csi) && has(v.csi.nodePublishSecretRef) && "
                "has(v.csi.nodePublishSecretRef.name))", "v.csi.nodePublishSecretRef.name"),
    ("secrets", None, "secret"), ("configmaps", None, "configMap"),  # projected sources (nested, joined)
    ("secrets", "variables.env.filter(v, has(v.valueFrom) && has(v.valueFrom.secretKeyRef) && "
                "has(v.valueFrom.secretKeyRef.name))", "v.valueFrom.secretKeyRef.name"),
    ("configmaps", "variables.env.filter(v, has(v.valueFrom) && has(v.valueFrom.configMapKeyRef) && "
                   "has(v.valueFrom.configMapKeyRef.name))", "v.valueFrom.configMapKeyRef.name"),
    ("secrets", "variables.envFrom.filter(v, has(v.secretRef) && has(v.secretRef.name))", "v.secretRef.name"),
    ("configmaps", "variables.envFrom.filter(v, has(v.configMapRef) && has(v.configMapRef.name))",
     "v.configMapRef.name"),
]


def _ref_text() -> str:
    parts = []
    for resource, source, name in _REFS:
        if source is None:  # projected.sources[].<name>.name: joined per volume, then across volumes
            parts.append(f"variables.volumes.filter(v, has(v.projected) && has(v.projected.sources)).map(v, "
                         f"v.projected.sources.filter(s, has(s.{name}) && has(s.{name}.name))"
                         f".map(s, '{resource}/' + string(s.{name}.name)).join(',')).filter(t, t != '').join(',')")
        else:
            parts.append(f"{source}.map(v, '{resource}/' + string({name})).join(',')")
    return "[" + ", ".join(parts) + "].filter(t, t != '').join(',')"


SCHEDULE = "request.kind.kind == 'ScoringSchedule'"
# The chart defines `operatorAccount` (the operator's user name) before these.
VARIABLES: list[tuple[str, str]] = [
    ("spec", f"{SCHEDULE} ? object.spec.jobTemplate.spec : object.spec"),
    ("field", f"{SCHEDULE} ? 'spec.jobTemplate.' : ''"),  # every message names a field below spec: of the template
    # A run the operator creates for a ScoringSchedule: its Secrets, ConfigMaps and claims are the template's, which
    # the API server checked against the schedule's author when it was written; the operator's own rights say nothing.
    ("scheduleRun", "!(" + SCHEDULE + ") && request.userInfo.username == variables.operatorAccount && "
                    "has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, r.kind == "
                    "'ScoringSchedule' && has(r.controller) && r.controller)"),
    ("img", optional("image", "''", "variables.spec")),
    ("images", optional("images")),
    ("accounts", optional("serviceAccounts")),
    ("volumeTypes", optional("volumeTypes")),
    ("mountPaths", optional("mountPaths")),
    ("conf", "has(variables.spec.sparkConf) ? variables.spec.sparkConf.map(k, k) : []"),
    ("reservedKeys", literal(isolation.OPERATOR_SPARK_KEYS)),
    ("sparkMode", optional("sparkConf.mode", "'denylist'")),
    ("sparkDeny", optional("sparkConf.deny")),
    ("sparkAllow", optional("sparkConf.allow")),
    ("confReserved", "variables.conf.filter(k, k in variables.reservedKeys)"),
    ("confDenied", f"variables.conf.filter(k, !(k in variables.reservedKeys) && !variables.sparkAllow.exists(a, "
                   f"k.matches({_re('a')})) && (variables.sparkMode == 'allowlist' || variables.sparkDeny.exists(d, "
                   f"k.matches({_re('d')}))))"),
    ("env", optional("env", "[]", "variables.spec")),
    ("operatorEnv", literal(isolation.OPERATOR_ENV)),
    ("envReserved", optional("env.reserved")),
    ("envAllow", optional("env.allow")),
    ("envBad", f"variables.env.map(e, e.name in variables.operatorEnv || (!variables.envAllow.exists(a, "
               f"e.name.matches({_re('a')})) && variables.envReserved.exists(r, e.name.matches({_re('r')}))))"),
    ("envFrom", optional("envFrom", "[]", "variables.spec")),
    ("envFromFree", optional("env.envFromWithoutPrefix", "false")),
    ("envPatterns", "variables.operatorEnv + variables.envReserved"),
    ("envFromBad", f"variables.envFrom.map(e, !has(e.prefix) || string(e.prefix) == '' || variables.envPatterns"
                   f".exists(p, {_conflict('string(e.prefix)', 'p')}))"),
    ("volumes", optional("volumes", "[]", "variables.spec")),
    ("volumeBad", f"variables.volumes.map(v, v.map(k, k).exists(k, k != 'name' && !(k in variables.volumeTypes)) "
                  f"|| (!('{TOKEN_VOLUME}' in variables.volumeTypes) && has(v.projected) && has(v.projected.sources) "
                  f"&& v.projected.sources.exists(s, has(s.serviceAccountToken))))"),
    ("operatorVolumes", literal(isolation.OPERATOR_VOLUMES)),
    ("volumeNames", "variables.volumes.map(v, has(v.name) ? string(v.name) : '')"),
    ("mounts", optional("volumeMounts", "[]", "variables.spec")),
    ("mountNames", "variables.mounts.map(m, has(m.name) ? string(m.name) : '')"),
    ("mountPathList", "variables.mounts.map(m, has(m.mountPath) ? string(m.mountPath) : '')"),
    ("operatorPaths", literal(isolation.OPERATOR_PATHS)),
    ("mountPathBad", f"variables.mountPathList.map(p, !{_mount_ok('p')})"),
    ("jobMounts", f"variables.mountPathList.filter(p, {_canon('p')}).map(p, {_trim('p')})"),
    ("uris", "(has(variables.spec.model) ? [['spec.model.uri', string(variables.spec.model.uri)]] : []) + "
             f"(has(variables.spec.models) ? {list(range(MAX_MODELS))}.filter(i, i < size(variables.spec.models)).map(i, "
             "['spec.models[' + string(i) + '].uri', string(variables.spec.models[i].uri)]) : []) + "
             "(has(variables.spec.input.uri) ? "
             "[['spec.input.uri', string(variables.spec.input.uri)]] : []) + [['spec.output.uri', "
             "string(variables.spec.output.uri)]] + (has(variables.spec.quarantineUri) ? [['spec.quarantineUri', "
             "string(variables.spec.quarantineUri)]] : []) + (has(variables.spec.drift) ? [['spec.drift.referenceUri', "
             "string(variables.spec.drift.referenceUri)]] : [])"),
    ("uriBad", f"variables.uris.map(f, {_local('f[1]')} && !({_canon(_path('f[1]'))} && variables.jobMounts.exists("
               f"m, {_under(_trim(_path('f[1]')), 'm')})))"),
    ("inputPathOptions", "has(variables.spec.input.options) ? variables.spec.input.options.map(k, k).filter(k, "
                         "k.lowerAscii() in ['path', 'paths']) : []"),
    ("outputPathOptions", "has(variables.spec.output.options) ? variables.spec.output.options.map(k, k).filter(k, "
                          "k.lowerAscii() in ['path', 'paths']) : []"),
    ("gpu", optional("executor.gpu", "0", "variables.spec")),
    ("tolerationBad", f"({optional('tolerations', '[]', 'variables.spec')}).map(t, (has(t.key) && t.key == '{GPU_TAINT}') "
                      f"|| ((!has(t.key) || t.key == '') && has(t.operator) && t.operator == 'Exists'))"),
    ("refText", _ref_text()),
    ("refs", "variables.refText == '' ? [] : variables.refText.split(',')"),
]


def _at(list_var: str, bad_var: str) -> str:
    return f"{_V}.{list_var}[{_V}.{bad_var}.indexOf(true)]"


def _index(bad_var: str) -> str:
    return f"string({_V}.{bad_var}.indexOf(true))"


def image_ok(img: str) -> str:
    """`img` is an exact entry of variables.images, below a `…/*` prefix with a digest, or `<repository>@sha256:…`."""
    return (f"variables.images.exists(e, {img} == e || (e.endsWith('/*') && {img}.startsWith(e.substring(0, size(e) "
            f"- 1)) && {img}.matches('@sha256:[a-f0-9]{{64}}$')) || (!e.contains('@') && !e.substring("
            f"e.lastIndexOf('/') + 1).contains(':') && {img}.startsWith(e + '@sha256:') && {img}.substring(size(e) "
            f"+ 8).matches('^[a-f0-9]{{64}}$')))")


_IMAGE_OK = "variables.img == '' || " + image_ok("variables.img")
_DENIED_KEY = "variables.confDenied.min()"
_ENV_NAME = f"{_at('env', 'envBad')}.name"
_FROM = _at("envFrom", "envFromBad")
_VOLUME = _at("volumes", "volumeBad")
_VOLUME_TYPES = f"{_VOLUME}.map(k, k).filter(k, k != 'name' && !(k in variables.volumeTypes))"
_URI = _at("uris", "uriBad")

# name → (expression: true when the spec passes, messageExpression) — the order is policy.CHECKS'.
CEL: dict[str, tuple[str, str]] = {
    "image": (_IMAGE_OK, "'spec.image: ' + variables.img + \" is not an allowed image (leave spec.image empty for the "
                         "operator's pinned runtime image, or ask the platform admin to add it to the ScoringPolicy's "
                         "images)\""),
    "serviceAccountName": (
        "!has(variables.spec.serviceAccountName) || variables.spec.serviceAccountName == '' || "
        "variables.spec.serviceAccountName in variables.accounts",
        "'spec.serviceAccountName: ' + variables.spec.serviceAccountName + ' is not an allowed service account "
        "(allowed: ' + variables.accounts.join(', ') + ')'"),
    "sparkConfReserved": ("size(variables.confReserved) == 0",
                          "'spec.sparkConf[\"' + variables.confReserved.min() + '\"]: reserved: the operator sets "
                          "this key'"),
    "sparkConfDenied": (
        "size(variables.confDenied) == 0",
        f"variables.sparkMode == 'allowlist' ? 'spec.sparkConf[\"' + {_DENIED_KEY} + '\"]: not among the "
        f"ScoringPolicy' + \"'\" + 's allowed keys' : 'spec.sparkConf[\"' + {_DENIED_KEY} + '\"]: denied by the "
        f"ScoringPolicy (pattern ' + variables.sparkDeny.filter(d, {_DENIED_KEY}.matches({_re('d')}))[0] + '); ask "
        f"the platform admin to allow it'"),
    "env": ("!variables.envBad.exists(b, b)",
            f"{_ENV_NAME} in variables.operatorEnv ? 'spec.env[' + {_index('envBad')} + '].name: ' + {_ENV_NAME} + "
            f"' is set by the operator' : 'spec.env[' + {_index('envBad')} + '].name: ' + {_ENV_NAME} + ' is reserved "
            f"(pattern ' + variables.envReserved.filter(r, {_ENV_NAME}.matches({_re('r')}))[0] + ')'"),
    "envFrom": ("variables.envFromFree || !variables.envFromBad.exists(b, b)",
                f"!has({_FROM}.prefix) || string({_FROM}.prefix) == '' ? 'spec.envFrom[' + {_index('envFromBad')} + "
                f"']: needs a prefix that no reserved name starts with (its keys are not known at admission), e.g. "
                f"prefix: APP_' : 'spec.envFrom[' + {_index('envFromBad')} + '].prefix: ' + string({_FROM}.prefix) + "
                f"' can produce reserved names (pattern ' + variables.envPatterns.filter(p, "
                f"{_conflict(f'string({_FROM}.prefix)', 'p')})[0] + ')'"),
    "volumeType": ("!variables.volumeBad.exists(b, b)",
                   f"'spec.volumes[' + {_index('volumeBad')} + ']: volume type ' + (size({_VOLUME_TYPES}) > 0 ? "
                   f"{_VOLUME_TYPES}.min() : '{TOKEN_VOLUME}') + ' is not allowed (allowed: ' + "
                   f"variables.volumeTypes.join(', ') + ')'"),
    "volumeName": ("!variables.volumeNames.exists(n, n in variables.operatorVolumes)",
                   "'spec.volumes[' + string(variables.volumeNames.map(n, n in variables.operatorVolumes)"
                   ".indexOf(true)) + ']: the name ' + variables.volumeNames.filter(n, n in "
                   "variables.operatorVolumes)[0] + \" is the operator's own volume\""),
    "mountVolume": ("variables.mountNames.all(n, n in variables.volumeNames)",
                    "'spec.volumeMounts[' + string(variables.mountNames.map(n, !(n in variables.volumeNames))"
                    ".indexOf(true)) + ']: volume ' + variables.mountNames.filter(n, !(n in variables.volumeNames))[0]"
                    " + ' is not one of spec.volumes'"),
    "mountPath": ("!variables.mountPathBad.exists(b, b)",
                  f"'spec.volumeMounts[' + {_index('mountPathBad')} + ']: mountPath ' + "
                  f"{_at('mountPathList', 'mountPathBad')} + ' is not allowed (mount at or below one of: ' + "
                  f"variables.mountPaths.join(', ') + \"; never over the operator's own paths)\""),
    "localUri": ("!variables.uriBad.exists(b, b)",
                 f"{_URI}[0] + ': ' + {_URI}[1] + \" is a local path outside the job's volumeMounts (a file:// or "
                 f"local path must lie on a volume the job mounts)\""),
    "pathOption": ("size(variables.inputPathOptions) == 0 && size(variables.outputPathOptions) == 0",
                   "size(variables.inputPathOptions) > 0 ? 'spec.input.options.' + variables.inputPathOptions.min() + "
                   "': not allowed: the location is spec.input.uri' : 'spec.output.options.' + "
                   "variables.outputPathOptions.min() + ': not allowed: the location is spec.output.uri'"),
    "gpuToleration": ("variables.gpu > 0 || !variables.tolerationBad.exists(b, b)",
                      f"'spec.tolerations[' + {_index('tolerationBad')} + ']: tolerates the GPU taint {GPU_TAINT} "
                      f"but spec.executor.gpu is 0'"),
    "referenceCount": ("size(variables.refs) <= {max}",
                       "'spec: names ' + string(size(variables.refs)) + ' Secrets, ConfigMaps and claims; at most "
                       "{max} are allowed'"),
}


def reference_rules(slots: int) -> list[tuple[str, str, str]]:
    """One validation per reference slot: each costs one authorizer check (CEL allows only ~2 per expression)."""
    rules = []
    for i in range(slots):
        ref = f"variables.refs[{i}]"
        rules.append((
            f"reference{i}",
            f"variables.scheduleRun || size(variables.refs) <= {i} || authorizer.group('')"
            f".resource({ref}.split('/')[0]).namespace(request.namespace).name({ref}.split('/')[1]).check('get')"
            ".allowed()",
            f"'spec: ' + ({ref}.startsWith('secrets/') ? 'Secret ' : ({ref}.startsWith('configmaps/') ? 'ConfigMap ' "
            f": 'PersistentVolumeClaim ')) + {ref}.split('/')[1] + ' is not readable by you (get ' + {ref} + '): a "
            f"ScoringJob may name only Secrets, ConfigMaps and claims its creator may read'"))
    return rules
