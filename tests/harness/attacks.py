"""The ScoringJob attacks of issue 11 ("What was found") and the ones found while fixing it, as spec changes with the
field each refusal must name. The operator tier sends each through the operator alone (no admission policy: the job
must end Failed, reason Invalid, with this message, nothing created); the chart tier through the API server with the
chart's ValidatingAdmissionPolicy (kubectl must refuse it with the operator's exact message); the unit tier through
the policy's Python rules. Every attack is accepted on the main branch before issue 11.
"""

from __future__ import annotations

from typing import Any

TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DATA = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}


def _conf(**conf: str) -> dict[str, Any]:
    return {"sparkConf": conf}


# id → (spec changes, the text the refusal must contain)
ATTACKS: dict[str, tuple[dict[str, Any], str]] = {
    # -- the issue's findings
    "public-image": ({"image": "docker.io/library/busybox:latest"},
                     "spec.image: docker.io/library/busybox:latest is not an allowed image"),
    "default-service-account": ({"serviceAccountName": "default"},
                                "spec.serviceAccountName: default is not an allowed service account"),
    "hostpath-volume": ({"volumes": [{"name": "host", "hostPath": {"path": "/"}}],
                         "volumeMounts": [{"name": "host", "mountPath": "/host"}]},
                        "spec.volumes[0]: volume type hostPath is not allowed"),
    "gitrepo-volume": ({"volumes": [{"name": "src", "gitRepo": {"repository": "https://example.com/x.git"}}]},
                       "spec.volumes[0]: volume type gitRepo is not allowed"),
    "spark-master": (_conf(**{"spark.master": "local[1]"}),
                     'spec.sparkConf["spark.master"]: reserved: the operator sets this key'),
    "pod-template-url": (_conf(**{"spark.kubernetes.executor.podTemplateFile": "https://example.com/t.yaml"}),
                         'spec.sparkConf["spark.kubernetes.executor.podTemplateFile"]: reserved'),
    "namespace": (_conf(**{"spark.kubernetes.namespace": "kube-system"}),
                  'spec.sparkConf["spark.kubernetes.namespace"]: reserved'),
    "image-conf": (_conf(**{"spark.kubernetes.container.image": "docker.io/library/busybox"}),
                   'spec.sparkConf["spark.kubernetes.container.image"]: reserved'),
    "app-id": (_conf(**{"spark.app.id": "spark-0123"}),
               'spec.sparkConf["spark.app.id"]: denied by the ScoringPolicy (pattern spark.app.id)'),
    "java-options": (_conf(**{"spark.driver.extraJavaOptions": "-XX:OnOutOfMemoryError=/bin/sh"}),
                     'spec.sparkConf["spark.driver.extraJavaOptions"]: denied by the ScoringPolicy (pattern '
                     '*.extraJavaOptions)'),
    "executor-hostpath-conf": (_conf(**{"spark.kubernetes.executor.volumes.hostPath.h.mount.path": "/host",
                                        "spark.kubernetes.executor.volumes.hostPath.h.options.path": "/"}),
                               'spec.sparkConf["spark.kubernetes.executor.volumes.hostPath.h.mount.path"]: denied by '
                               'the ScoringPolicy (pattern spark.kubernetes.*.volumes.*)'),
    "trust-certificates": (_conf(**{"spark.kubernetes.trust.certificates": "true"}),
                           'spec.sparkConf["spark.kubernetes.trust.certificates"]: denied by the ScoringPolicy'),
    "env-pod-name": ({"env": [{"name": "POD_NAME", "value": "someone-else"}]},
                     "spec.env[0].name: POD_NAME is set by the operator"),
    "env-api-server": ({"env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "evil.example.com"}]},
                       "spec.env[0].name: KUBERNETES_SERVICE_HOST is reserved (pattern KUBERNETES_*)"),
    "env-gpus": ({"env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]},
                 "spec.env[0].name: NVIDIA_VISIBLE_DEVICES is reserved (pattern NVIDIA_*)"),
    "gpu-toleration": ({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
                       "spec.tolerations[0]: tolerates the GPU taint nvidia.com/gpu but spec.executor.gpu is 0"),
    "token-as-input": ({"input": {"uri": f"file://{TOKEN}", "format": "csv"},
                        "output": {"uri": "s3a://out/", "passthrough": ["_c0"]}},
                       f"spec.input.uri: file://{TOKEN} is a local path outside the job's volumeMounts"),
    # -- found while fixing it
    "env-from-unprefixed": ({"envFrom": [{"configMapRef": {"name": "env"}}]},
                            "spec.envFrom[0]: needs a prefix that no reserved name starts with"),
    "env-from-reserved-prefix": ({"envFrom": [{"prefix": "LD_", "configMapRef": {"name": "env"}}]},
                                 "spec.envFrom[0].prefix: LD_ can produce reserved names (pattern LD_*)"),
    "env-java-tool-options": ({"env": [{"name": "JAVA_TOOL_OPTIONS", "value": "-javaagent:/data/a.jar"}]},
                              "spec.env[0].name: JAVA_TOOL_OPTIONS is reserved (pattern JAVA_*)"),
    "executor-env-conf": (_conf(**{"spark.executorEnv.LD_PRELOAD": "/data/x.so"}),
                          'spec.sparkConf["spark.executorEnv.LD_PRELOAD"]: denied by the ScoringPolicy'),
    "mount-over-job-json": ({"volumes": [{"name": "spec", "configMap": {"name": "mine"}}],
                             "volumeMounts": [{"name": "spec", "mountPath": "/etc/tfscore/job.json",
                                               "subPath": "job.json"}]},
                            "spec.volumeMounts[0]: mountPath /etc/tfscore/job.json is not allowed"),
    "mount-over-token": ({"volumes": [{"name": "t", "secret": {"secretName": "mine"}}],
                          "volumeMounts": [{"name": "t", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]},
                         "spec.volumeMounts[0]: mountPath /var/run/secrets/kubernetes.io/serviceaccount is not allowed"),
    "projected-token": ({"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]},
                        "spec.volumes[0]: volume type projected.serviceAccountToken is not allowed"),
    "operator-volume-name": ({"volumes": [{"name": "tfscore-auth", "emptyDir": {}}]},
                             "spec.volumes[0]: the name tfscore-auth is the operator's own volume"),
    "dot-dot-path": ({**DATA, "model": {"uri": "/data/../var/run/secrets"}},
                     "spec.model.uri: /data/../var/run/secrets is a local path outside the job's volumeMounts"),
    "models-token": ({"model": None, "models": [{"name": "champion", "uri": "s3a://models/risk/"},
                                                {"name": "challenger", "uri": f"file://{TOKEN}"}]},
                     f"spec.models[1].uri: file://{TOKEN} is a local path outside the job's volumeMounts"),
    "path-option": ({"input": {"uri": "s3a://in/", "options": {"path": f"file://{TOKEN}"}}},
                    "spec.input.options.path: not allowed: the location is spec.input.uri"),
    "disable-auth": (_conf(**{"spark.authenticate": "false"}),
                     'spec.sparkConf["spark.authenticate"]: reserved'),
    "connect-server": (_conf(**{"spark.api.mode": "connect"}),
                       'spec.sparkConf["spark.api.mode"]: denied by the ScoringPolicy'),
}

# The issue's first finding as one manifest (every hole at once): refused, naming the first rule it breaks.
ISSUE_SPEC: dict[str, Any] = {
    "image": "docker.io/library/busybox:latest", "serviceAccountName": "default",
    "volumes": [{"name": "host", "hostPath": {"path": "/"}}], "volumeMounts": [{"name": "host", "mountPath": "/host"}],
    "sparkConf": {"spark.master": "local[1]", "spark.kubernetes.executor.podTemplateFile": "https://example.com/t"},
    "input": {"uri": f"file://{TOKEN}", "format": "csv"}, "output": {"uri": "s3a://out/", "passthrough": ["_c0"]},
}
ISSUE_FIRST = "spec.image: docker.io/library/busybox:latest is not an allowed image"


def oversized_conf(entries: int = 120, size: int = 8000) -> dict[str, str]:
    """sparkConf the CRD's bounds accept (16 KiB a value, 256 keys) whose ConfigMap passes 900 KiB (it appears twice)."""
    return {f"spark.tfscore.pad{i:03d}": "x" * size for i in range(entries)}
