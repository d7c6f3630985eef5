"""The ScoringPolicy's rules as the operator checks them: one function per rule, in `CHECKS` order.

Each rule is written twice, under the same name: here in Python (the operator, for clusters without the chart's
admission policy) and in policy_cel.py in CEL (the API server, through that policy). Both return the same sentence for
the same spec: a rule's first offence, where "first" is the smallest index of a list and the smallest key of a map (CEL
has no stable map order). `violations` lists them in rule order; the API server reports the first. A unit test keeps
the two rule lists in step; a chart-tier test sends every attack through both and compares the messages.

Local paths follow one canonical form on both sides (absolute; no `//`, `.` or `..` segments), so the API server's
string comparisons and tfscore.api.uris.normalise (the one home for URI comparison) agree on every accepted path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tfscore.api import uris
from tfscore.api.scoringjob import ScoringJob, ScoringJobSpec
from tfscore.api.scoringpolicy import ScoringPolicySpec
from tfscore.operator.config import OperatorConfig
from tfscore.operator.scoringjob import builders, isolation, names

GPU_TAINT = names.GPU_RESOURCE
MAX_REFERENCES = 8  # Secrets/ConfigMaps/claims a job may name: one authorizer check each (~350k of CEL's 1M per call)
TOKEN_VOLUME = "projected.serviceAccountToken"


def glob(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression anchored at both ends (as CEL's `matches('^…$')` on RE2)."""
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + r"\Z")


def _first(pairs: list[tuple[Any, bool]]) -> Any:
    return next((item for item, bad in pairs if bad), None)


def canonical(path: str) -> bool:
    """Absolute, and no empty, '.' or '..' segment (a trailing '/' is fine)."""
    return (path.startswith("/") and "//" not in path and "/./" not in path and "/../" not in path
            and not path.endswith(("/.", "/..")))


def _under(path: str, roots: list[str]) -> bool:
    here = uris.normalise(path)
    return any(uris.normalise(root).contains(here) for root in roots)


def _overlaps(path: str, others: tuple[str, ...]) -> str | None:
    return next((o for o in others if uris.overlap(path, o)), None)


# ---------------------------------------------------------------- the checks (Python)


def _image(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    image = spec.image
    if not image or any(image_allowed(image, entry) for entry in policy.images):
        return None
    return (f"spec.image: {image} is not an allowed image (leave spec.image empty for the operator's pinned runtime "
            "image, or ask the platform admin to add it to the ScoringPolicy's images)")


DIGEST = re.compile(r"@sha256:[a-f0-9]{64}$")


def image_allowed(image: str, entry: str) -> bool:
    """An exact reference; a prefix ending in /* (digest required); a repository (repo@sha256:<digest>)."""
    if image == entry:
        return True
    if entry.endswith("/*"):
        return image.startswith(entry[:-1]) and bool(DIGEST.search(image))
    tail = entry[entry.rfind("/") + 1:]
    return ("@" not in entry and ":" not in tail and image.startswith(entry + "@sha256:")
            and bool(re.fullmatch(r"[a-f0-9]{64}", image[len(entry) + 8:])))


def _account(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    name = spec.service_account_name or ""
    if not name or name in policy.service_accounts:
        return None
    return (f"spec.serviceAccountName: {name} is not an allowed service account "
            f"(allowed: {', '.join(policy.service_accounts)})")


def _spark_reserved(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    bad = sorted(k for k in spec.spark_conf if k in isolation.OPERATOR_SPARK_KEYS)
    return f'spec.sparkConf["{bad[0]}"]: reserved: the operator sets this key' if bad else None


def spark_denied(key: str, policy: ScoringPolicySpec) -> str | None:
    """Why `key` is refused (the deny pattern, or 'allowlist'), or None."""
    conf = policy.spark_conf
    if key in isolation.OPERATOR_SPARK_KEYS or any(glob(a).match(key) for a in conf.allow):
        return None
    if conf.mode == "allowlist":
        return "allowlist"
    return next((p for p in conf.deny if glob(p).match(key)), None)


def _spark_denied(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    bad = sorted(k for k in spec.spark_conf if spark_denied(k, policy))
    if not bad:
        return None
    why = spark_denied(bad[0], policy)
    if why == "allowlist":
        return f'spec.sparkConf["{bad[0]}"]: not among the ScoringPolicy\'s allowed keys'
    return f'spec.sparkConf["{bad[0]}"]: denied by the ScoringPolicy (pattern {why}); ask the platform admin to allow it'


def env_reserved(name: str, policy: ScoringPolicySpec) -> str | None:
    """'operator' or the reserved pattern `name` matches (and no allow pattern), or None."""
    if name in isolation.OPERATOR_ENV:
        return "operator"
    if any(glob(a).match(name) for a in policy.env.allow):
        return None
    return next((p for p in policy.env.reserved if glob(p).match(name)), None)


def _env(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    hit = _first([((i, e.name), bool(env_reserved(e.name, policy))) for i, e in enumerate(spec.env)])
    if hit is None:
        return None
    i, name = hit
    why = env_reserved(name, policy)
    if why == "operator":
        return f"spec.env[{i}].name: {name} is set by the operator"
    return f"spec.env[{i}].name: {name} is reserved (pattern {why})"


def prefix_conflict(prefix: str, policy: ScoringPolicySpec) -> str | None:
    """A reserved pattern (or operator name) some `prefix + key` could match."""
    for pattern in (*isolation.OPERATOR_ENV, *policy.env.reserved):
        if pattern.endswith("*"):
            stem = pattern[:-1]
            if prefix.startswith(stem) or stem.startswith(prefix):
                return pattern
        elif pattern.startswith(prefix):
            return pattern
    return None


def _env_from(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    if policy.env.env_from_without_prefix:
        return None
    for i, entry in enumerate(spec.env_from):
        prefix = entry.get("prefix") or ""
        if not prefix:
            return (f"spec.envFrom[{i}]: needs a prefix that no reserved name starts with (its keys are not known "
                    "at admission), e.g. prefix: APP_")
        pattern = prefix_conflict(prefix, policy)
        if pattern:
            return f"spec.envFrom[{i}].prefix: {prefix} can produce reserved names (pattern {pattern})"
    return None


def volume_types(volume: Mapping[str, Any]) -> list[str]:
    """The volume's type keys, and 'projected.serviceAccountToken' when it projects a token."""
    found = [k for k in volume if k != "name"]
    sources = (volume.get("projected") or {}).get("sources") or []
    if any("serviceAccountToken" in s for s in sources):
        found.append(TOKEN_VOLUME)
    return found


def _volume_type(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    allowed = policy.volume_types
    for i, volume in enumerate(spec.volumes):
        bad = sorted(t for t in volume_types(volume) if t not in allowed and t != TOKEN_VOLUME)
        if not bad and TOKEN_VOLUME in volume_types(volume) and TOKEN_VOLUME not in allowed:
            bad = [TOKEN_VOLUME]
        if bad:
            return f"spec.volumes[{i}]: volume type {bad[0]} is not allowed (allowed: {', '.join(allowed)})"
    return None


def _volume_name(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    hit = _first([((i, str(v.get("name") or "")), str(v.get("name") or "") in isolation.OPERATOR_VOLUMES)
                  for i, v in enumerate(spec.volumes)])
    return f"spec.volumes[{hit[0]}]: the name {hit[1]} is the operator's own volume" if hit else None


def _mount_volume(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    names = [str(v.get("name") or "") for v in spec.volumes]
    hit = _first([((i, str(m.get("name") or "")), str(m.get("name") or "") not in names)
                  for i, m in enumerate(spec.volume_mounts)])
    return f"spec.volumeMounts[{hit[0]}]: volume {hit[1]} is not one of spec.volumes" if hit else None


def mount_allowed(path: str, policy: ScoringPolicySpec) -> bool:
    return canonical(path) and _under(path, policy.mount_paths) and _overlaps(path, isolation.OPERATOR_PATHS) is None


def _mount_path(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    hit = _first([((i, str(m.get("mountPath", ""))), not mount_allowed(str(m.get("mountPath", "")), policy))
                  for i, m in enumerate(spec.volume_mounts)])
    if hit is None:
        return None
    return (f"spec.volumeMounts[{hit[0]}]: mountPath {hit[1]} is not allowed (mount at or below one of: "
            f"{', '.join(policy.mount_paths)}; never over the operator's own paths)")


def _uri_fields(spec: ScoringJobSpec) -> list[tuple[str, str]]:
    fields = [("spec.model.uri", spec.model.uri if spec.model else None),
              *[(f"spec.models[{i}].uri", m.uri) for i, m in enumerate(spec.models)],
              ("spec.input.uri", spec.input.uri),
              ("spec.output.uri", spec.output.uri), ("spec.quarantineUri", spec.quarantine_uri),
              ("spec.drift.referenceUri", spec.drift.reference_uri if spec.drift else None)]
    return [(f, u) for f, u in fields if u]


def local_path(uri: str) -> str | None:
    """The path of a file://, local:// or scheme-less URI; None for any other scheme."""
    lower = uri.lower()
    for scheme in ("file://", "local://", "file:"):
        if lower.startswith(scheme):
            return uri[len(scheme):]
    return None if "://" in uri else uri


def _local_uri(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    mounts = [str(m.get("mountPath", "")) for m in spec.volume_mounts]
    for field, uri in _uri_fields(spec):
        path = local_path(uri)
        if path is not None and not (canonical(path) and _under(path, [m for m in mounts if canonical(m)])):
            return (f"{field}: {uri} is a local path outside the job's volumeMounts (a file:// or local path must "
                    "lie on a volume the job mounts)")
    return None


def _path_option(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    for side, options, uri in (("input", spec.input.options, "spec.input.uri"),
                               ("output", spec.output.options, "spec.output.uri")):
        bad = sorted(k for k in options if k.lower() in ("path", "paths"))
        if bad:
            return f"spec.{side}.options.{bad[0]}: not allowed: the location is {uri}"
    return None


def _gpu_toleration(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    if spec.executor.gpu > 0:
        return None
    hit = _first([(i, t.get("key") == GPU_TAINT or (not t.get("key") and t.get("operator") == "Exists"))
                  for i, t in enumerate(spec.tolerations)])
    if hit is None:
        return None
    return f"spec.tolerations[{hit}]: tolerates the GPU taint {GPU_TAINT} but spec.executor.gpu is 0"


def references(spec: ScoringJobSpec) -> list[str]:
    """'<resource>/<name>' of every Secret, ConfigMap and claim the spec names, in the admission policy's order."""
    vols, env = spec.volumes, [e.to_wire() for e in spec.env]
    groups = [
        [f"secrets/{v['secret']['secretName']}" for v in vols if "secretName" in (v.get("secret") or {})],
        [f"configmaps/{v['configMap']['name']}" for v in vols if "name" in (v.get("configMap") or {})],
        [f"persistentvolumeclaims/{v['persistentVolumeClaim']['claimName']}" for v in vols
         if "claimName" in (v.get("persistentVolumeClaim") or {})],
        [f"secrets/{v['csi']['nodePublishSecretRef']['name']}" for v in vols
         if "name" in ((v.get("csi") or {}).get("nodePublishSecretRef") or {})],
        [f"secrets/{s['secret']['name']}" for v in vols for s in (v.get("projected") or {}).get("sources") or []
         if "name" in (s.get("secret") or {})],
        [f"configmaps/{s['configMap']['name']}" for v in vols for s in (v.get("projected") or {}).get("sources") or []
         if "name" in (s.get("configMap") or {})],
        [f"secrets/{e['valueFrom']['secretKeyRef']['name']}" for e in env
         if "name" in ((e.get("valueFrom") or {}).get("secretKeyRef") or {})],
        [f"configmaps/{e['valueFrom']['configMapKeyRef']['name']}" for e in env
         if "name" in ((e.get("valueFrom") or {}).get("configMapKeyRef") or {})],
        [f"secrets/{e['secretRef']['name']}" for e in spec.env_from if "name" in (e.get("secretRef") or {})],
        [f"configmaps/{e['configMapRef']['name']}" for e in spec.env_from if "name" in (e.get("configMapRef") or {})],
    ]
    return [ref for group in groups for ref in group]


def _reference_count(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> str | None:
    n = len(references(spec))
    if n <= MAX_REFERENCES:
        return None
    return f"spec: names {n} Secrets, ConfigMaps and claims; at most {MAX_REFERENCES} are allowed"


CHECKS: list[tuple[str, Callable[[ScoringJobSpec, ScoringPolicySpec], str | None]]] = [
    ("image", _image), ("serviceAccountName", _account), ("sparkConfReserved", _spark_reserved),
    ("sparkConfDenied", _spark_denied), ("env", _env), ("envFrom", _env_from), ("volumeType", _volume_type),
    ("volumeName", _volume_name), ("mountVolume", _mount_volume), ("mountPath", _mount_path),
    ("localUri", _local_uri), ("pathOption", _path_option), ("gpuToleration", _gpu_toleration),
    ("referenceCount", _reference_count),
]
# After these, the API server alone checks that the job's creator may read each Secret, ConfigMap and claim the spec
# names (CEL's authorizer; the operator never learns who created a job).


def violations(spec: ScoringJobSpec, policy: ScoringPolicySpec) -> list[str]:
    """Every rule's first offence, in rule order (the API server reports the first of these)."""
    return [message for _, check in CHECKS if (message := check(spec, policy))]


def admit(job: ScoringJob, body: Mapping[str, Any], policy: ScoringPolicySpec, config: OperatorConfig) -> str | None:
    """Everything the operator refuses before a job's first start: the policy's rules, then the size of the ConfigMap
    the job would run from (the spec about three times over: job.json, spark.properties, the executor template),
    measured on the builders' real output. One line per problem, or None."""
    found = violations(job.spec, policy)
    placeholder = names.auth_secret_prefix(job.metadata.name) + "xxxxx"  # generateName adds five characters
    size = isolation.config_map_size(builders.config_map(job, body, config, 1, placeholder))
    if size > names.CONFIG_MAP_LIMIT:
        found.append(f"spec: the job's ConfigMap would be {size // 1024} KiB, over the {names.CONFIG_MAP_LIMIT // 1024}"
                     " KiB limit (it holds the spec about three times): shrink spec.sparkConf, spec.env, spec.volumes "
                     "or the input/output options")
    return "\n".join(found) or None
