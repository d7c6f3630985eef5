"""tfscore.runtime.cloud: one environment in, the Hadoop conf and the fsspec options out (pure)."""

from __future__ import annotations

import pytest

from tfscore.runtime import cloud
from tfscore.runtime.errors import TfscoreError

H = cloud.HADOOP


def test_no_variables_assume_no_anonymous_access():
    conf, s3, gs, az = (cloud.spark_conf({}), cloud.storage_options("s3", {}), cloud.storage_options("gs", {}),
                        cloud.storage_options("abfs", {}))
    assert conf[H + "fs.s3a.aws.credentials.provider"] == cloud.AWS_PROVIDER_CHAIN
    assert conf[H + "fs.gs.auth.type"] == "COMPUTE_ENGINE"
    assert not any("anonymous" in v.lower() or v == "UNAUTHENTICATED" for v in conf.values())
    assert s3 == {"anon": False} and az == {"anon": False}
    assert gs == {"token": "cloud"}  # the metadata server, not gcsfs's None (which ends in anonymous access)
    assert not any(k.startswith(H + "fs.azure.") for k in conf)
    assert "spark.redaction.regex" not in conf


def test_aws_static_keys_stay_out_of_the_hadoop_conf_but_reach_s3fs():
    env = {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_SESSION_TOKEN": "tok",
           "AWS_DEFAULT_REGION": "eu-west-1"}
    conf = cloud.hadoop_conf(env)
    assert "s3cr3t" not in conf.values() and "AKIA1" not in conf.values()
    assert conf["fs.s3a.aws.credentials.provider"].split(",")[0] == \
        "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
    assert conf["fs.s3a.endpoint.region"] == "eu-west-1" and "fs.s3a.endpoint" not in conf
    assert cloud.storage_options("s3", env) == {"anon": False, "key": "AKIA1", "secret": "s3cr3t", "token": "tok",
                                                "client_kwargs": {"region_name": "eu-west-1"}}


def test_aws_region_prefers_aws_region_like_the_sdk():
    env = {"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert cloud.hadoop_conf(env)["fs.s3a.endpoint.region"] == "ap-south-1"
    assert cloud.storage_options("s3a", env)["client_kwargs"] == {"region_name": "ap-south-1"}


def test_aws_custom_endpoint_is_path_style_for_both_and_pins_a_region():
    env = {"AWS_ENDPOINT_URL": "https://other.example:9000", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:8333/"}
    conf = cloud.hadoop_conf(env)
    assert (conf["fs.s3a.endpoint"], conf["fs.s3a.path.style.access"], conf["fs.s3a.connection.ssl.enabled"]) == \
        ("http://127.0.0.1:8333", "true", "false")
    assert conf["fs.s3a.endpoint.region"] == "us-east-1"
    options = cloud.storage_options("s3", env)
    assert options["endpoint_url"] == "http://127.0.0.1:8333"
    assert options["config_kwargs"] == {"s3": {"addressing_style": "path"}}
    assert options["client_kwargs"] == {"region_name": "us-east-1"}
    general = cloud.hadoop_conf({"AWS_ENDPOINT_URL": "https://minio.local"})
    assert general["fs.s3a.endpoint"] == "https://minio.local" and general["fs.s3a.connection.ssl.enabled"] == "true"


def test_aws_ignore_configured_endpoint_urls():
    env = {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert "fs.s3a.endpoint" not in cloud.hadoop_conf(env)
    assert "endpoint_url" not in cloud.storage_options("s3", env)


def test_aws_web_identity_and_profile_are_left_to_the_sdk_chains():
    irsa = {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/scorer", "AWS_REGION": "us-east-1"}
    chain = cloud.hadoop_conf(irsa)["fs.s3a.aws.credentials.provider"].split(",")
    assert chain == ["software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
                     "software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider",
                     "software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider",
                     "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider"]
    # Not the JVM-wide singleton DefaultCredentialsProvider.create(): S3A closes its providers with each filesystem.
    assert "DefaultCredentialsProvider" not in ",".join(chain)
    assert cloud.storage_options("s3", irsa) == {"anon": False, "client_kwargs": {"region_name": "us-east-1"}}
    assert cloud.storage_options("s3", {"AWS_PROFILE": "scoring"})["profile"] == "scoring"
    # Static keys win over a profile, in botocore's chain as in the SDK's.
    both = cloud.storage_options("s3", {"AWS_PROFILE": "p", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    assert "profile" not in both and both["key"] == "a"


@pytest.mark.parametrize("env, names", [
    ({"AWS_ACCESS_KEY_ID": "a"}, ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")),
    ({"AWS_SECRET_ACCESS_KEY": "b", "AWS_ACCESS_KEY_ID": ""}, ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
    ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}, ("AWS_ROLE_ARN",)),
    ({"AWS_ENDPOINT_URL_S3": "127.0.0.1:9000"}, ("AWS_ENDPOINT_URL_S3",)),
    ({"AWS_ENDPOINT_URL": "ftp://host"}, ("AWS_ENDPOINT_URL",)),
])
def test_aws_bad_input_names_the_variable(env, names):
    with pytest.raises(TfscoreError) as err:
        cloud.spark_conf(env)
    assert str(err.value).startswith(names[0]) and all(n in str(err.value) for n in names)
    assert "\n" not in str(err.value)


def test_gcs_keyfile_and_project():
    env = {"GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/gcp/key.json", "GOOGLE_CLOUD_PROJECT": "proj-1"}
    conf = cloud.spark_conf(env)
    assert conf[H + "fs.gs.auth.type"] == "SERVICE_ACCOUNT_JSON_KEYFILE"
    assert conf[H + "fs.gs.auth.service.account.json.keyfile"] == "/var/secrets/gcp/key.json"
    assert conf[H + "fs.gs.project.id"] == "proj-1"
    assert cloud.storage_options("gcs", env) == {"token": "/var/secrets/gcp/key.json", "project": "proj-1"}


def test_gcs_filesystem_classes_are_googles_not_hadoop_gcp():
    conf = cloud.hadoop_conf({})
    assert conf["fs.gs.impl"] == "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem"
    assert conf["fs.AbstractFileSystem.gs.impl"] == "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS"
    # Hadoop 3.5's core-default.xml writes these as "64m" etc., which Google's connector cannot parse.
    assert conf["fs.gs.block.size"] == "67108864" and conf["fs.gs.inputstream.min.range.request.size"] == "2097152"
    assert all(v.isdigit() for k, v in conf.items() if k in cloud.GCS_SIZES)


def test_azure_account_key_for_abfs_and_wasb_and_redacted():
    env = {"AZURE_STORAGE_ACCOUNT_NAME": "lake1", "AZURE_STORAGE_ACCOUNT_KEY": "a2V5",
           "AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t", "AZURE_CLIENT_SECRET": "s"}  # the key wins
    conf = cloud.spark_conf(env)
    assert conf[H + "fs.azure.account.auth.type.lake1.dfs.core.windows.net"] == "SharedKey"
    assert conf[H + "fs.azure.account.key.lake1.dfs.core.windows.net"] == "a2V5"
    assert conf[H + "fs.azure.account.key.lake1.blob.core.windows.net"] == "a2V5"
    assert H + "fs.azure.account.oauth2.client.secret" not in conf
    assert conf["spark.redaction.regex"] == cloud.SPARK_REDACTION
    import re
    assert re.search(conf["spark.redaction.regex"], H + "fs.azure.account.key.lake1.dfs.core.windows.net")
    assert cloud.storage_options("abfs", env) == {"anon": False, "account_name": "lake1", "account_key": "a2V5"}


def test_azure_service_principal():
    env = {"AZURE_STORAGE_ACCOUNT_NAME": "lake1", "AZURE_CLIENT_ID": "cid", "AZURE_TENANT_ID": "tid",
           "AZURE_CLIENT_SECRET": "csecret", "AZURE_FEDERATED_TOKEN_FILE": "/t"}  # the secret wins
    conf = cloud.hadoop_conf(env)
    assert conf["fs.azure.account.auth.type"] == "OAuth"
    assert conf["fs.azure.account.oauth.provider.type"] == \
        "org.apache.hadoop.fs.azurebfs.oauth2.ClientCredsTokenProvider"
    assert conf["fs.azure.account.oauth2.client.endpoint"] == "https://login.microsoftonline.com/tid/oauth2/token"
    assert (conf["fs.azure.account.oauth2.client.id"], conf["fs.azure.account.oauth2.client.secret"]) == \
        ("cid", "csecret")
    assert "spark.redaction.regex" not in cloud.spark_conf(env)  # Spark's default already matches "secret"
    assert cloud.storage_options("az", env) == {"anon": False, "account_name": "lake1", "tenant_id": "tid",
                                                "client_id": "cid", "client_secret": "csecret"}


def test_azure_workload_identity():
    env = {"AZURE_CLIENT_ID": "cid", "AZURE_TENANT_ID": "tid",
           "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
           "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us"}
    conf = cloud.hadoop_conf(env)
    assert conf["fs.azure.account.oauth.provider.type"] == \
        "org.apache.hadoop.fs.azurebfs.oauth2.WorkloadIdentityTokenProvider"
    assert (conf["fs.azure.account.oauth2.msi.tenant"], conf["fs.azure.account.oauth2.client.id"]) == ("tid", "cid")
    assert conf["fs.azure.account.oauth2.token.file"] == "/var/run/secrets/azure/tokens/azure-identity-token"
    assert conf["fs.azure.account.oauth2.msi.authority"] == "https://login.microsoftonline.us/"
    assert "fs.azure.account.oauth2.client.secret" not in conf
    # adlfs: DefaultAzureCredential (WorkloadIdentityCredential) from the same variables; never anonymous.
    assert cloud.storage_options("abfss", env) == {"anon": False}


@pytest.mark.parametrize("env, first", [
    ({"AZURE_STORAGE_ACCOUNT_KEY": "k"}, "AZURE_STORAGE_ACCOUNT_NAME"),
    ({"AZURE_CLIENT_SECRET": "s", "AZURE_TENANT_ID": "t"}, "AZURE_CLIENT_ID"),
    ({"AZURE_FEDERATED_TOKEN_FILE": "/t", "AZURE_CLIENT_ID": "c"}, "AZURE_TENANT_ID"),
    ({"AZURE_AUTHORITY_HOST": "login.example"}, "AZURE_AUTHORITY_HOST"),
])
def test_azure_bad_input_names_the_variable(env, first):
    with pytest.raises(TfscoreError, match=f"^{first}"):
        cloud.spark_conf(env)
    with pytest.raises(TfscoreError, match=f"^{first}"):
        cloud.storage_options("abfs", env)


def test_only_set_values_count_and_other_protocols_get_nothing():
    env = {"AWS_ACCESS_KEY_ID": " ", "AWS_SECRET_ACCESS_KEY": "", "GOOGLE_APPLICATION_CREDENTIALS": ""}
    assert cloud.storage_options("s3", env) == {"anon": False}
    assert cloud.storage_options("gs", env) == {"token": "cloud"}
    assert cloud.storage_options("file", env) == {} and cloud.storage_options("memory", env) == {}
    assert all(k.startswith(H) or k == "spark.redaction.regex" for k in cloud.spark_conf(env))


def test_pure_module_imports_neither_spark_nor_fsspec():
    import subprocess
    import sys

    code = ("import sys, tfscore.runtime.cloud as c; c.spark_conf({}); c.storage_options('s3', {});"
            "bad = [m for m in ('pyspark', 'fsspec', 's3fs', 'gcsfs', 'adlfs', 'botocore') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
