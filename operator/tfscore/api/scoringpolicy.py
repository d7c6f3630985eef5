"""The ScoringPolicy kind (tfscore.io/v1alpha1): what ScoringJobs in one namespace may ask for, owned by the platform admin.

The chart renders one ScoringPolicy per job namespace from its values (`policy.*`). Two enforcers read it: the API server,
through the chart's ValidatingAdmissionPolicy (the ScoringPolicy is its parameter object, looked up in the namespace of
the ScoringJob), and the operator, which refuses the same specs with the same messages on clusters without that policy
(tfscore.operator.scoringjob.policy). The defaults below are the safe ones: they let every example and end-to-end job
run and refuse what a scoring job never needs. An admin opens something for one team by adding to that namespace's
policy (`images`, `serviceAccounts`, `volumeTypes`, `mountPaths`, `sparkConf.allow`, `env.allow`); keys the operator
itself sets stay reserved whatever a policy says.

Patterns are globs: `*` stands for any run of characters (dots included), everything else is literal and
case-sensitive, as Spark's and the kernel's names are.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from tfscore.api.common import ObjectMeta, WireModel

KIND = "ScoringPolicy"
PLURAL = "scoringpolicies"
SINGULAR = "scoringpolicy"
SHORT_NAMES = ["sjpolicy"]
DESCRIPTION = ("What ScoringJobs in this namespace may ask for (images, service accounts, volumes, Spark configuration, "
               "environment); read by the chart's admission policy and by the tfscore operator.")

# Spark configuration families a scoring job never needs, each with the reason it is dangerous. Keys the operator sets
# itself (builders.OPERATOR_SPARK_KEYS) are refused as reserved before this list is consulted.
DEFAULT_SPARK_DENY: dict[str, str] = {
    # -- where the job runs and who it is: the operator decides from the spec
    "spark.submit.*": "deploy mode and submit-time files",
    "spark.kubernetes.context": "loads another cluster's kubeconfig context",
    "spark.kubernetes.driver.master": "another API server for the driver's executor requests",
    "spark.kubernetes.submitInDriver": "switches the driver to cluster-mode credentials",
    "spark.app.id": "on stop Spark deletes every executor pod and claim labelled with this app id",
    "spark.api.mode": "'connect' starts a Spark Connect server: an unauthenticated endpoint",
    "spark.remote": "connects the session to a remote Spark Connect server",
    "spark.connect.*": "Spark Connect server settings and extension classes",
    # -- the Kubernetes API: credentials and trust
    "spark.kubernetes.authenticate*": "API-server credentials and service accounts (token, client key, CA files)",
    "spark.kubernetes.trust.certificates": "trusts any API server certificate: the pod's token goes to whoever answers",
    # -- the pods: the operator builds them from the spec's checked fields
    "spark.kubernetes.*.podTemplate*": "pod templates (Spark downloads an https:// template) replace the operator's",
    "spark.kubernetes.*.volumes.*": "volumes of any type (hostPath, NFS, on-demand claims) outside spec.volumes",
    "spark.kubernetes.*.secrets.*": "mounts Secrets outside spec.volumes",
    "spark.kubernetes.*.secretKeyRef.*": "environment from Secrets outside spec.env",
    "spark.kubernetes.container.image*": "images and pull secrets outside spec.image",
    "spark.kubernetes.*.container.image": "driver or executor image outside spec.image",
    "spark.kubernetes.*.label.*": "labels select NetworkPolicies and the operator's pods",
    "spark.kubernetes.*.annotation.*": "annotations steer schedulers, autoscalers and admission",
    "spark.kubernetes.*node.selector.*": "node placement outside spec.nodeSelector",
    "spark.kubernetes.*scheduler.name": "another scheduler (around quotas and queues)",
    "spark.kubernetes.*securityContext.*": "container security settings",
    "spark.kubernetes.*.pod.featureSteps": "runs extra classes that rewrite the pods",
    "spark.kubernetes.*.pod.excludedFeatureSteps": "drops Spark's pod-building steps",
    "spark.kubernetes.driverEnv.*": "driver environment outside spec.env",
    "spark.kubernetes.driver.service.*": "driver Service handling (the operator owns the Service)",
    "spark.kubernetes.driver.*PersistentVolumeClaim": "claim handling (the driver's Role has no claims)",
    "spark.kubernetes.hadoop.configMapName": "mounts a ConfigMap outside spec.volumes",
    "spark.kubernetes.kerberos.*": "mounts Kerberos Secrets and ConfigMaps",
    "spark.kubernetes.file.upload.path": "uploads local files for the pods",
    "spark.kubernetes.allocation.pods.allocator": "statefulset/deployment allocators need rights the driver lacks",
    "spark.kubernetes.executor.decommissionLabel*": "patches executor pods (the driver's Role patches its own pod)",
    "spark.kubernetes.executor.podDeletionCost": "patches executor pods",
    "spark.kubernetes.decommission.script": "a command run in every executor",
    "spark.kubernetes.driver.annotateExitException": "patches the driver pod with the exception",
    "spark.executorEnv.*": "executor environment outside spec.env (LD_PRELOAD, JAVA_TOOL_OPTIONS, …)",
    # -- code: every way to add code to the driver and executors (class names can then only name classes in the image)
    "*.extraJavaOptions": "JVM options (-XX:OnOutOfMemoryError=<command>, -javaagent:)",
    "*.defaultJavaOptions": "JVM options",
    "*.extraClassPath": "classes from a mounted volume",
    "*.extraLibraryPath": "native libraries from a mounted volume",
    "spark.jars": "jars downloaded onto the class path",
    "spark.jars.*": "packages and repositories (Maven, Ivy settings) downloaded onto the class path",
    "spark.files": "files downloaded into the pods",
    "spark.archives": "archives downloaded and unpacked into the pods",
    "spark.plugins*": "driver and executor plugin classes",
    "spark.extraListeners": "listener classes",
    "spark.sql.extensions": "SQL extension classes",
    "spark.sql.catalog.*": "catalog classes and their credentials",
    "spark.sql.queryExecutionListeners": "listener classes",
    "spark.sql.streaming.streamingQueryListeners": "listener classes",
    "spark.sql.hive.metastore.jars*": "Hive metastore jars (downloaded with 'maven')",
    "spark.pyspark.*": "the Python executables of driver and workers",
    "spark.python.daemon.module": "the Python worker daemon module",
    "spark.python.worker.module": "the Python worker module",
    "spark.*.resource.*": "resources and their discovery scripts (the operator sets the GPU ones)",
    "spark.resources.*": "the resource discovery plugin class",
    "spark.dynamicAllocation.*": "executor counts beyond spec.executor.instances",
    # -- Spark's own endpoints and secrets
    "spark.authenticate*": "RPC authentication (the operator turns it on with a per-job secret)",
    "spark.network.crypto.*": "RPC encryption",
    "spark.network.sasl.*": "RPC authentication fallback",
    "spark.ssl.*": "TLS settings and keystores",
    "spark.*acls*": "UI and job access lists",
    "spark.ui.filters": "UI filter classes",
    "spark.ui.proxy*": "UI proxying",
    "spark.ui.reverseProxy*": "UI proxying",
    "spark.ui.allowFramingFrom": "UI clickjacking protection",
    "spark.user.groups.mapping": "user group mapping class",
    "spark.redaction.*": "which secrets are redacted in logs and the UI",
    "spark.sql.redaction.*": "which secrets are redacted in query plans",
    "spark.kerberos.*": "Kerberos principals and keytabs",
    "spark.security.*": "delegation-token providers",
    # -- `where` may not read arbitrary files
    "spark.sql.runSQLOnFiles": "SQL over file paths (parquet.`/any/path`) in input.where",
}

# Environment names a job may not set: the operator, the kubelet, Spark, the image and its interpreters read them, and
# many load code from a path (a file on one of the job's own volumes then runs in the driver, next to its token).
DEFAULT_RESERVED_ENV: list[str] = [
    "POD_*", "KUBERNETES_*", "SPARK_*", "_SPARK_*", "PYSPARK_*", "TF_*", "NVIDIA_*", "CUDA_*", "TFSCORE_*", "HOME",
    "PATH", "LD_*", "JAVA_*", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "PYTHON*", "HADOOP_*", "YARN_*",
    "BASH_ENV", "ENV", "BASH_FUNC_*", "SHELLOPTS", "BASHOPTS", "PS4", "IFS", "GLIBC_TUNABLES", "GCONV_PATH",
    "OPENSSL_*", "ARROW_LIBHDFS_DIR",
]
DEFAULT_VOLUME_TYPES: list[str] = ["persistentVolumeClaim", "configMap", "secret", "emptyDir", "csi", "ephemeral",
                                   "projected"]
DEFAULT_MOUNT_PATHS: list[str] = ["/data", "/mnt"]

# Pattern syntax (checked by the CRD, so the admission policy's glob → regex translation stays exact).
SPARK_PATTERN = r"^[A-Za-z0-9_.*-]+$"
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*[*]?$"
IMAGE_ENTRY = r"^[a-z0-9]([a-z0-9._:/@-]*[a-z0-9*])?$"
PATH_ENTRY = r"^/([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)?$"
NAME_ENTRY = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
MAX_ENTRIES = 256


SparkKey = Annotated[str, Field(min_length=1, max_length=256, pattern=SPARK_PATTERN)]
EnvName = Annotated[str, Field(min_length=1, max_length=128, pattern=ENV_PATTERN)]
ImageEntry = Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE_ENTRY)]
PathEntry = Annotated[str, Field(min_length=1, max_length=1024, pattern=PATH_ENTRY)]
AccountName = Annotated[str, Field(min_length=1, max_length=253, pattern=NAME_ENTRY)]
VolumeType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z.]+$")]


def _entries(description: str) -> Any:
    return Field(max_length=MAX_ENTRIES, description=description)


class SparkConfPolicy(WireModel):
    """Which spec.sparkConf keys a job may set."""

    mode: Annotated[Literal["denylist", "allowlist"], Field(
        description="denylist: any key but the reserved and denied ones (allow opens denied ones); allowlist: only "
                    "keys matching allow.")] = "denylist"
    deny: Annotated[list[SparkKey], _entries("Key patterns refused (globs: * is any run of characters).")] = \
        list(DEFAULT_SPARK_DENY)
    allow: Annotated[list[SparkKey], _entries(
        "Key patterns accepted even when denied (denylist mode), or the only keys accepted (allowlist mode). Keys "
        "the operator sets stay reserved.")] = []


class EnvPolicy(WireModel):
    """Which environment names spec.env and spec.envFrom may produce."""

    reserved: Annotated[list[EnvName], _entries("Names refused in spec.env (globs ending in *).")] = \
        list(DEFAULT_RESERVED_ENV)
    allow: Annotated[list[EnvName], _entries(
        "Names accepted in spec.env even when reserved. Names the operator sets stay reserved.")] = []
    env_from_without_prefix: Annotated[bool, Field(
        description="false (default): every spec.envFrom entry needs a prefix that no reserved name starts with "
                    "(a Secret's or ConfigMap's keys are not known at admission).")] = False


class ScoringPolicySpec(WireModel):
    """The rules. An empty spec.image or spec.serviceAccountName always means the operator's own pinned image or driver
    service account; anything else a job names must be listed here."""

    images: Annotated[list[ImageEntry], _entries(
        "Images spec.image may name: an exact reference (repo@sha256:… or repo:tag), a repository (any "
        "repo@sha256:<digest> in it), or a prefix ending in /* (any digest-pinned image below it).")] = []
    service_accounts: Annotated[list[AccountName], _entries(
        "Service accounts spec.serviceAccountName may name (the chart adds its driver account).")] = []
    volume_types: Annotated[list[VolumeType], _entries(
        "Volume types spec.volumes may use (core/v1 Volume field names, e.g. persistentVolumeClaim); "
        "'projected.serviceAccountToken' also allows projected service-account tokens.")] = list(DEFAULT_VOLUME_TYPES)
    mount_paths: Annotated[list[PathEntry], _entries(
        "spec.volumeMounts may mount only at or below these directories.")] = list(DEFAULT_MOUNT_PATHS)
    spark_conf: SparkConfPolicy = SparkConfPolicy()
    env: EnvPolicy = EnvPolicy()


class ScoringPolicy(WireModel):
    """A whole ScoringPolicy object."""

    api_version: Literal["tfscore.io/v1alpha1"]
    kind: Literal["ScoringPolicy"]
    metadata: ObjectMeta
    spec: ScoringPolicySpec = ScoringPolicySpec()


def default_spec(images: list[str], service_accounts: list[str]) -> ScoringPolicySpec:
    """The policy of a namespace without a ScoringPolicy: the defaults plus the operator's own images and account."""
    return ScoringPolicySpec(images=[i for i in dict.fromkeys(images) if i],
                             service_accounts=[s for s in dict.fromkeys(service_accounts) if s])
