"""Object-store credentials and endpoints from one environment, for both storage stacks.

Spark reads and writes through Hadoop's connectors (s3a, gs, abfs/abfss/wasb: the jars of requirements/jars.lock); the
Arrow reader and writer, the model download and the commit go through fsspec (s3fs, gcsfs, adlfs). Both must reach the
same store with the same identity, so both are configured here from the same variables, following each cloud's own
standard chain; nothing here assumes anonymous access when no credential is set (each stack then tries the
machine's own identity: EC2/ECS metadata, GCE metadata, Azure managed identity, and fails naming what it tried).

Pure: a mapping in (normally os.environ; in a pod, the container env from spec.env/envFrom), dicts out. Nothing is
imported from Spark or fsspec. `spark_conf` gives `spark.hadoop.*` keys (plus a redaction pattern when a storage key is
copied into the conf); `storage_options` gives the keyword arguments of `fsspec.filesystem(protocol, ...)`.

Property names are those of the connector versions pinned in requirements/jars.lock, read from their sources, docs
and class files: hadoop-aws 3.5.0 (org.apache.hadoop.fs.s3a.Constants; index.md "Authenticating with S3",
connecting.md "Connecting to an Amazon S3 Bucket through the S3A Connector"), gcs-connector 4.0.4 (CONFIGURATION.md
"Authentication"; HadoopCredentialsConfiguration), hadoop-azure 3.5.0 (abfs.md "Authentication";
org.apache.hadoop.fs.azurebfs.constants.ConfigurationKeys and AbfsConfiguration.getTokenProvider).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tfscore.runtime.errors import TfscoreError

HADOOP = "spark.hadoop."

# ---------------------------------------------------------------- AWS (s3a, s3fs)

# The SDK v2 default chain, spelled as S3A's own provider list (fs.s3a.aws.credentials.provider, tried in order; index.md
# "Authenticating with S3"): static keys (+ session token) from the env, web identity (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE
# + AWS_ROLE_ARN, through the sts module), the shared config/credentials files (AWS_PROFILE), then the container and
# EC2 instance metadata (hadoop-aws's IAMInstanceCredentialsProvider). Why not software.amazon.awssdk.auth.credentials.
# DefaultCredentialsProvider itself: S3A builds providers through their static create(), which for that class returns
# one JVM-wide instance, and closes its providers when a filesystem instance closes; closing the shared chain breaks
# web-identity refresh for every other S3A instance in the JVM. Each class here gets a fresh instance per filesystem.
AWS_PROVIDER_CHAIN = ",".join([
    "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider",
    "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider",
])
# With a custom endpoint and no region, botocore signs for us-east-1 while S3A would pick us-east-2: pin one for both.
CUSTOM_ENDPOINT_REGION = "us-east-1"


def _get(env: Mapping[str, str], *names: str) -> str | None:
    """The first of `names` set to a non-empty value (Kubernetes gives an optional, missing Secret key as "")."""
    for name in names:
        value = (env.get(name) or "").strip()
        if value:
            return value
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def aws_settings(env: Mapping[str, str]) -> dict[str, str | None]:
    """What the AWS variables say, checked: region, endpoint, profile and the static keys."""
    key_id, secret = _get(env, "AWS_ACCESS_KEY_ID"), _get(env, "AWS_SECRET_ACCESS_KEY")
    if bool(key_id) != bool(secret):
        have, missing = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if key_id else \
            ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
        raise TfscoreError(f"{missing}: not set while {have} is; set both, or neither to use the other credential "
                           "sources (web identity, AWS_PROFILE, instance metadata)")
    if _get(env, "AWS_WEB_IDENTITY_TOKEN_FILE") and not _get(env, "AWS_ROLE_ARN"):
        raise TfscoreError("AWS_ROLE_ARN: not set while AWS_WEB_IDENTITY_TOKEN_FILE is (web identity needs both)")
    # AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: the SDKs' own switch to disregard the endpoint variables.
    endpoint = None
    if not _truthy(env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")):
        name = "AWS_ENDPOINT_URL_S3" if _get(env, "AWS_ENDPOINT_URL_S3") else "AWS_ENDPOINT_URL"
        endpoint = _get(env, name)
        if endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise TfscoreError(f"{name}: {endpoint!r} is not an http:// or https:// URL")
            endpoint = endpoint.rstrip("/")
    region = _get(env, "AWS_REGION", "AWS_DEFAULT_REGION")  # the SDK v2 reads the first, botocore the second
    if endpoint and not region:
        region = CUSTOM_ENDPOINT_REGION
    return {"region": region, "endpoint": endpoint, "profile": _get(env, "AWS_PROFILE"),
            "key": key_id, "secret": secret, "token": _get(env, "AWS_SESSION_TOKEN")}


def s3a_conf(env: Mapping[str, str]) -> dict[str, str]:
    """Hadoop keys for s3a:// (hadoop-aws 3.5.0). Credentials are not copied: the providers read the same variables
    (and token file, profile files) in each JVM, so executors use their own pod's env and IRSA tokens refresh."""
    aws = aws_settings(env)
    conf = {"fs.s3a.aws.credentials.provider": AWS_PROVIDER_CHAIN}
    if aws["region"]:
        conf["fs.s3a.endpoint.region"] = aws["region"]
    if aws["endpoint"]:
        # connecting.md "Third party object stores": a custom endpoint needs path-style requests (no bucket DNS).
        conf["fs.s3a.endpoint"] = aws["endpoint"]
        conf["fs.s3a.path.style.access"] = "true"
        conf["fs.s3a.connection.ssl.enabled"] = str(aws["endpoint"].startswith("https://")).lower()
    return conf


def s3fs_options(env: Mapping[str, str]) -> dict[str, Any]:
    """s3fs.S3FileSystem keyword arguments. Static keys are passed as given; without them botocore runs its own
    chain (web identity, profile, container, instance metadata) from the process environment, as the JVM does."""
    aws = aws_settings(env)
    options: dict[str, Any] = {"anon": False}
    if aws["key"]:
        options.update(key=aws["key"], secret=aws["secret"])
        if aws["token"]:
            options["token"] = aws["token"]
    elif aws["profile"]:
        options["profile"] = aws["profile"]
    if aws["region"]:
        options["client_kwargs"] = {"region_name": aws["region"]}
    if aws["endpoint"]:
        options["endpoint_url"] = aws["endpoint"]
        options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    return options


# ---------------------------------------------------------------- Google Cloud Storage (gs, gcsfs)

# Hadoop 3.5's core-default.xml is written for its own new hadoop-gcp module (org.apache.hadoop.fs.gs.*, not
# installed), and two of its choices break Google's connector: fs.gs.impl names hadoop-gcp's class (gs:// fails with
# ClassNotFoundException although Google's jar is on the path), and sizes are written with suffixes ("64m") that
# gcs-connector 4.0.4 parses as plain numbers (NumberFormatException "For input string: \"64m\""). So the classes
# and every such size are set here, to Google's defaults in bytes. tests/runtime/test_cloud_fs.py checks the list
# against the core-default.xml of the installed hadoop-client-api (a Hadoop upgrade adding one fails there).
GCS_FILESYSTEM = "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem"
GCS_ABSTRACT_FILESYSTEM = "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS"
GCS_SIZES = {
    "fs.gs.block.size": str(64 << 20),                         # core-default 64m
    "fs.gs.rewrite.max.chunk.size": str(512 << 20),            # 512m
    "fs.gs.outputstream.buffer.size": str(8 << 20),            # 8m
    "fs.gs.inputstream.inplace.seek.limit": str(8 << 20),      # 8m
    "fs.gs.inputstream.min.range.request.size": str(2 << 20),  # 2m
}


def gcs_settings(env: Mapping[str, str]) -> dict[str, str | None]:
    return {"keyfile": _get(env, "GOOGLE_APPLICATION_CREDENTIALS"),
            "project": _get(env, "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")}


def gs_conf(env: Mapping[str, str]) -> dict[str, str]:
    """Hadoop keys for gs:// (gcs-connector 4.0.4, fs.gs.auth.type: CONFIGURATION.md "Authentication")."""
    gcs = gcs_settings(env)
    conf = {"fs.gs.impl": GCS_FILESYSTEM, "fs.AbstractFileSystem.gs.impl": GCS_ABSTRACT_FILESYSTEM, **GCS_SIZES}
    if gcs["keyfile"]:
        # A path, not the secret: the file must exist at the same path in the driver and every executor (a mounted
        # Secret), as the SDKs read it too.
        conf["fs.gs.auth.type"] = "SERVICE_ACCOUNT_JSON_KEYFILE"
        conf["fs.gs.auth.service.account.json.keyfile"] = gcs["keyfile"]
    else:
        conf["fs.gs.auth.type"] = "COMPUTE_ENGINE"  # the connector's default: the metadata server (GCE, GKE)
    if gcs["project"]:
        conf["fs.gs.project.id"] = gcs["project"]
    return conf


def gcsfs_options(env: Mapping[str, str]) -> dict[str, Any]:
    """gcsfs.GCSFileSystem keyword arguments. token "cloud" is the metadata server; gcsfs's own default (None) would
    fall back to anonymous access when nothing else works."""
    gcs = gcs_settings(env)
    options: dict[str, Any] = {"token": gcs["keyfile"] or "cloud"}
    if gcs["project"]:
        options["project"] = gcs["project"]
    return options


# ---------------------------------------------------------------- Azure (abfs, abfss, wasb, adlfs)

ABFS_OAUTH = "org.apache.hadoop.fs.azurebfs.oauth2."
DEFAULT_AUTHORITY = "https://login.microsoftonline.com/"


def azure_settings(env: Mapping[str, str]) -> dict[str, str | None]:
    """Which Azure identity the variables name, checked. Precedence: the storage account key, then a service
    principal secret (azure-identity's EnvironmentCredential), then workload identity (the variables AKS's webhook
    injects: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST)."""
    account = _get(env, "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT")
    key = _get(env, "AZURE_STORAGE_ACCOUNT_KEY")
    client, tenant = _get(env, "AZURE_CLIENT_ID"), _get(env, "AZURE_TENANT_ID")
    secret, token_file = _get(env, "AZURE_CLIENT_SECRET"), _get(env, "AZURE_FEDERATED_TOKEN_FILE")
    authority = (_get(env, "AZURE_AUTHORITY_HOST") or DEFAULT_AUTHORITY).rstrip("/") + "/"
    if key:
        if not account:
            raise TfscoreError("AZURE_STORAGE_ACCOUNT_NAME: not set while AZURE_STORAGE_ACCOUNT_KEY is (a key belongs "
                               "to one storage account)")
        mode = "key"
    elif secret or token_file:
        mode = "service-principal" if secret else "workload-identity"
        needs = "AZURE_CLIENT_SECRET" if secret else "AZURE_FEDERATED_TOKEN_FILE"
        for name, value in (("AZURE_CLIENT_ID", client), ("AZURE_TENANT_ID", tenant)):
            if not value:
                raise TfscoreError(f"{name}: not set while {needs} is")
    else:
        mode = None
    if not authority.startswith("https://"):
        raise TfscoreError(f"AZURE_AUTHORITY_HOST: {authority!r} is not an https:// URL")
    return {"mode": mode, "account": account, "key": key, "client": client, "tenant": tenant, "secret": secret,
            "token_file": token_file, "authority": authority}


def abfs_conf(env: Mapping[str, str]) -> dict[str, str]:
    """Hadoop keys for abfs:// abfss:// (and wasb:// for the account key), hadoop-azure 3.5.0. hadoop-azure has no
    provider that reads these variables, so the values go into the conf (Spark redacts keys matching its
    spark.redaction.regex: secret/token match already, the account key is added by spark_conf)."""
    az = azure_settings(env)
    conf: dict[str, str] = {}
    if az["mode"] == "key":
        account = az["account"]
        conf[f"fs.azure.account.auth.type.{account}.dfs.core.windows.net"] = "SharedKey"
        conf[f"fs.azure.account.key.{account}.dfs.core.windows.net"] = az["key"]
        conf[f"fs.azure.account.key.{account}.blob.core.windows.net"] = az["key"]  # wasb://
    elif az["mode"] == "service-principal":
        conf.update({
            "fs.azure.account.auth.type": "OAuth",
            "fs.azure.account.oauth.provider.type": ABFS_OAUTH + "ClientCredsTokenProvider",
            "fs.azure.account.oauth2.client.endpoint": f"{az['authority']}{az['tenant']}/oauth2/token",
            "fs.azure.account.oauth2.client.id": az["client"],
            "fs.azure.account.oauth2.client.secret": az["secret"],
        })
    elif az["mode"] == "workload-identity":
        # AbfsConfiguration.getTokenProvider: msi.tenant and client.id are mandatory; token.file defaults to AKS's
        # /var/run/secrets/azure/tokens/azure-identity-token, msi.authority to login.microsoftonline.com.
        conf.update({
            "fs.azure.account.auth.type": "OAuth",
            "fs.azure.account.oauth.provider.type": ABFS_OAUTH + "WorkloadIdentityTokenProvider",
            "fs.azure.account.oauth2.msi.authority": az["authority"],
            "fs.azure.account.oauth2.msi.tenant": az["tenant"],
            "fs.azure.account.oauth2.client.id": az["client"],
            "fs.azure.account.oauth2.token.file": az["token_file"],
        })
    # No identity named: hadoop-azure's default (SharedKey) fails naming the missing fs.azure.account.key.<account>.
    return conf


def adlfs_options(env: Mapping[str, str]) -> dict[str, Any]:
    """adlfs.AzureBlobFileSystem keyword arguments. Passed explicitly: adlfs itself reads AZURE_STORAGE_CLIENT_ID/
    _SECRET/_TENANT_ID, not azure-identity's AZURE_CLIENT_* names. Workload identity (and managed identity when nothing
    is named) come from azure-identity's DefaultAzureCredential, which adlfs uses when anon is False and no key or
    secret is given; it reads AZURE_FEDERATED_TOKEN_FILE etc. from the process environment."""
    az = azure_settings(env)
    options: dict[str, Any] = {"anon": False}
    if az["account"]:
        options["account_name"] = az["account"]
    if az["mode"] == "key":
        options["account_key"] = az["key"]
    elif az["mode"] == "service-principal":
        options.update(tenant_id=az["tenant"], client_id=az["client"], client_secret=az["secret"])
    return options


# ---------------------------------------------------------------- the two entry points

# fsspec protocol names (and the Hadoop schemes users also write) -> the options builder of their backend.
_FSSPEC = {"s3": s3fs_options, "s3a": s3fs_options, "gs": gcsfs_options, "gcs": gcsfs_options,
           "abfs": adlfs_options, "abfss": adlfs_options, "az": adlfs_options}

# Spark's default spark.redaction.regex, plus the Azure account key (its property name has no secret/token/access.key).
SPARK_REDACTION = r"(?i)secret|password|token|access[.]?key|fs[.]azure[.]account[.]key"


def hadoop_conf(env: Mapping[str, str]) -> dict[str, str]:
    """The Hadoop configuration (bare fs.* keys) of all three connectors."""
    return {**s3a_conf(env), **gs_conf(env), **abfs_conf(env)}


def spark_conf(env: Mapping[str, str]) -> dict[str, str]:
    """`spark.hadoop.*` keys for the SparkSession (and spark.redaction.regex when an account key is in the conf)."""
    hadoop = hadoop_conf(env)
    conf = {HADOOP + k: v for k, v in hadoop.items()}
    if any(k.startswith("fs.azure.account.key.") for k in hadoop):
        conf["spark.redaction.regex"] = SPARK_REDACTION
    return conf


def storage_options(protocol: str, env: Mapping[str, str]) -> dict[str, Any]:
    """fsspec keyword arguments for `protocol` (s3, gs, abfs, ...); {} for protocols without credentials (file, ...)."""
    builder = _FSSPEC.get(protocol.lower())
    return builder(env) if builder else {}
