"""The Hadoop cloud connectors of requirements/jars.lock in real Spark, configured by tfscore.runtime.cloud.

s3a:// runs against a real S3 API server on loopback (SeaweedFS): Parquet and CSV with partitionBy, read back with a filter,
and a directory rename (S3A copies through the SDK's transfer manager on the async netty client, which here runs on
pyspark's netty 4.2). Web identity (IRSA) runs against moto's STS. gs:// and abfs:// have no server here: the tests show
the scheme resolves to the connector and that a read fails on authentication (a loopback token endpoint refusing the
grant, or no credential at all) with a message naming it, not ClassNotFoundException. No traffic leaves loopback:
token and storage endpoints point at 127.0.0.1 and instance metadata lookups are disabled or pointed there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tfscore.runtime import cloud

pytestmark = pytest.mark.runtime


def _require_connectors(spark) -> None:
    try:
        spark._jvm.java.lang.Class.forName("org.apache.hadoop.fs.s3a.S3AFileSystem")
    except Exception:
        message = "the cloud connector jars are not on Spark's classpath: run `make venv` (hack/install-jars.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def cloud_spark(spark, s3_endpoint):
    """The session of conftest with tfscore.runtime.cloud's Hadoop conf for this environment applied."""
    _require_connectors(spark)
    hadoop = spark._jsc.hadoopConfiguration()
    for key, value in cloud.hadoop_conf(os.environ).items():
        hadoop.set(key, value)
    return spark


@pytest.fixture(scope="module")
def refusing_token_server():
    """A loopback OAuth token endpoint that refuses every grant, as Google's and Azure AD's do for a bad credential."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"error": "invalid_client", "error_description": "tfscore test: credential refused"})
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _java_error(exc: BaseException) -> str:
    """The Java exception's chain as one line: "Class: message <- Cause: message ..." (what a user is shown)."""
    java = getattr(exc, "java_exception", None)
    parts, seen = [], 0
    while java is not None and seen < 8:
        parts.append(f"{java.getClass().getName()}: {java.getMessage()}")
        java, seen = java.getCause(), seen + 1
    return " <- ".join(" ".join(p.split()) for p in parts) or " ".join(str(exc).split())


@contextmanager
def _hadoop_set(hadoop, conf: dict[str, str]):
    """Set keys on the session's Hadoop conf for one test, then restore them (the session is shared)."""
    saved = {k: hadoop.get(k) for k in conf}
    for k, v in conf.items():
        hadoop.set(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                hadoop.unset(k)
            else:
                hadoop.set(k, v)


def test_s3a_parquet_and_csv_partitioned_round_trip(cloud_spark, s3_endpoint):
    import fsspec
    import pyarrow.parquet as pq

    s3 = fsspec.filesystem("s3", **cloud.storage_options("s3", os.environ))  # the fsspec side, same environment
    if not s3.exists("cloudfs"):
        # boto3, not s3.mkdir: s3fs sends its client region as LocationConstraint, which S3 refuses for us-east-1.
        import boto3
        boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="cloudfs")
    rows = [(i, f"name{i}", i % 3) for i in range(60)]
    df = cloud_spark.createDataFrame(rows, "id long, name string, part int")
    df.write.mode("overwrite").partitionBy("part").parquet("s3a://cloudfs/x/parquet")
    df.write.mode("overwrite").partitionBy("part").option("header", True).csv("s3a://cloudfs/x/csv")

    expected = [r for r in rows if r[2] == 1 and r[0] < 30]
    parquet = cloud_spark.read.parquet("s3a://cloudfs/x/parquet").where("part = 1 AND id < 30").orderBy("id")
    csv = (cloud_spark.read.option("header", True).schema("id long, name string")
           .csv("s3a://cloudfs/x/csv").where("part = 1 AND id < 30").orderBy("id"))
    assert [tuple(r) for r in parquet.select("id", "name", "part").collect()] == expected
    assert [tuple(r) for r in csv.select("id", "name", "part").collect()] == expected

    s3.invalidate_cache()
    written = sorted(s3.find("cloudfs/x/parquet/part=1"))
    assert written and all(f.endswith(".parquet") for f in written)
    assert pq.ParquetDataset("cloudfs/x/parquet", filesystem=s3).read().num_rows == 60


def test_s3a_directory_rename_and_the_transfer_manager(cloud_spark, s3_endpoint):
    import boto3
    import fsspec

    jvm = cloud_spark._jvm
    Path, URI = jvm.org.apache.hadoop.fs.Path, jvm.java.net.URI
    cloud_spark.range(0, 40, numPartitions=4).write.mode("overwrite").parquet("s3a://cloudfs/rename/src")
    hadoop = cloud_spark._jsc.hadoopConfiguration()
    fs = jvm.org.apache.hadoop.fs.FileSystem.get(URI("s3a://cloudfs/"), hadoop)
    assert fs.getClass().getName() == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert fs.rename(Path("s3a://cloudfs/rename/src"), Path("s3a://cloudfs/rename/dst"))
    # No object is left under the source (a recursive listing: SeaweedFS lists an emptied prefix for a while, so a
    # delimited probe such as S3A's exists() may still see the directory; hack/s3/README.md).
    assert not fs.listFiles(Path("s3a://cloudfs/rename/src"), True).hasNext()
    assert cloud_spark.read.parquet("s3a://cloudfs/rename/dst").count() == 40

    # Objects at or over fs.s3a.multipart.threshold (128M by default; 5M, the minimum, for this bucket) are copied
    # by the SDK's transfer manager on the async client: netty-nio-client 2.35.4 running on pyspark's netty 4.2.
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="cloudtm")
    blob = os.urandom(12 << 20)
    fsspec.filesystem("s3", **cloud.storage_options("s3", os.environ)).pipe_file("cloudtm/big/blob.bin", blob)
    conf = jvm.org.apache.hadoop.conf.Configuration(hadoop)
    conf.set("fs.s3a.bucket.cloudtm.multipart.threshold", "5M")
    conf.set("fs.s3a.bucket.cloudtm.multipart.size", "5M")
    tm_fs = jvm.org.apache.hadoop.fs.FileSystem.newInstance(URI("s3a://cloudtm/"), conf)
    try:
        assert tm_fs.rename(Path("s3a://cloudtm/big"), Path("s3a://cloudtm/moved"))
        threads = [t.getName() for t in jvm.java.lang.Thread.getAllStackTraces().keySet().toArray()]
        netty = [name for name in threads if "NettyEventLoop" in name]
    finally:
        tm_fs.close()
    assert netty, sorted(threads)
    s3 = fsspec.filesystem("s3", **cloud.storage_options("s3", os.environ))
    s3.invalidate_cache()
    assert s3.cat_file("cloudtm/moved/blob.bin") == blob and not s3.exists("cloudtm/big/blob.bin")


def test_gs_resolves_to_googles_connector_and_names_the_refused_credential(cloud_spark, refusing_token_server,
                                                                            tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    jvm = cloud_spark._jvm
    hadoop = cloud_spark._jsc.hadoopConfiguration()
    # Hadoop 3.5's own core-default.xml names hadoop-gcp's class for gs://; cloud.py points it at Google's jar.
    bare = jvm.org.apache.hadoop.conf.Configuration()
    with pytest.raises(Exception, match="org.apache.hadoop.fs.gs.GoogleHadoopFileSystem"):
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass("gs", bare)
    assert jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass("gs", hadoop).getName() == cloud.GCS_FILESYSTEM

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    keyfile = tmp_path / "sa.json"
    keyfile.write_text(json.dumps({
        "type": "service_account", "project_id": "tfscore-test", "private_key_id": "0", "private_key": key,
        "client_email": "scorer@tfscore-test.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": f"{refusing_token_server}/token"}))
    conf = cloud.hadoop_conf({"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)})
    conf.update({"fs.gs.token.server.url": f"{refusing_token_server}/token", "fs.gs.impl.disable.cache": "true",
                 "fs.gs.storage.root.url": refusing_token_server, "fs.gs.http.max.retry": "0"})
    with _hadoop_set(hadoop, conf), pytest.raises(Exception) as err:
        cloud_spark.read.parquet("gs://tfscore-bucket/x").collect()
    text = _java_error(err.value)
    print(f"gs with a refused service account: {text}")
    assert "ClassNotFound" not in text
    assert "invalid_client" in text or "401" in text, text


def test_abfs_resolves_and_names_the_refused_service_principal(cloud_spark, refusing_token_server):
    jvm = cloud_spark._jvm
    hadoop = cloud_spark._jsc.hadoopConfiguration()
    get_class = jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass
    assert get_class("abfs", hadoop).getName() == "org.apache.hadoop.fs.azurebfs.AzureBlobFileSystem"
    assert get_class("abfss", hadoop).getName() == "org.apache.hadoop.fs.azurebfs.SecureAzureBlobFileSystem"
    assert get_class("wasbs", hadoop).getName() == "org.apache.hadoop.fs.azure.NativeAzureFileSystem$Secure"

    conf = cloud.hadoop_conf({"AZURE_CLIENT_ID": "cid", "AZURE_TENANT_ID": "tid", "AZURE_CLIENT_SECRET": "nope"})
    conf["fs.azure.account.oauth2.client.endpoint"] = f"{refusing_token_server}/tid/oauth2/token"  # loopback only
    conf["fs.azure.oauth.token.fetch.retry.max.retries"] = "0"
    conf["fs.abfss.impl.disable.cache"] = "true"
    with _hadoop_set(hadoop, conf), pytest.raises(Exception) as err:
        cloud_spark.read.parquet("abfss://data@tfscoretest.dfs.core.windows.net/x").collect()
    text = _java_error(err.value)
    print(f"abfs with a refused service principal: {text}")
    assert "ClassNotFound" not in text
    assert "AADToken" in text or "401" in text, text


def test_every_suffixed_gs_size_in_hadoops_core_default_is_overridden(cloud_spark):
    """Hadoop's core-default.xml (in the installed hadoop-client-api) against cloud.GCS_SIZES."""
    import re

    jvm = cloud_spark._jvm
    defaults = jvm.org.apache.hadoop.conf.Configuration(False)
    defaults.addResource("core-default.xml")
    suffixed = sorted(str(e.getKey()) for e in defaults.iterator()
                      if str(e.getKey()).startswith("fs.gs.") and re.fullmatch(r"\d+[kmgtp]", str(e.getValue())))
    assert suffixed, "core-default.xml has no fs.gs.* sizes any more: cloud.GCS_SIZES may be obsolete"
    assert set(suffixed) <= set(cloud.GCS_SIZES), set(suffixed) - set(cloud.GCS_SIZES)


IRSA_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pyspark.sql import SparkSession
    from tfscore.runtime import cloud
    builder = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
    for k, v in {**cloud.spark_conf(os.environ), **json.loads(sys.argv[1])}.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("FATAL")
    jvm, hadoop = spark._jvm, spark._jsc.hadoopConfiguration()
    FileSystem, URI, Path = jvm.org.apache.hadoop.fs.FileSystem, jvm.java.net.URI, jvm.org.apache.hadoop.fs.Path
    out = {}
    spark.range(5).write.mode("overwrite").parquet("s3a://irsa/a")
    # One filesystem instance closed, then a new one: the credential chain must survive the first one's close.
    FileSystem.newInstance(URI("s3a://irsa/"), hadoop).close()
    other = FileSystem.newInstance(URI("s3a://irsa/"), hadoop)
    out["after_close"] = len(other.listStatus(Path("s3a://irsa/a")))
    out["rows"] = spark.read.parquet("s3a://irsa/a").count()
    def failure(uri):
        try:
            spark.read.parquet(uri).collect()
            return "no error"
        except Exception as exc:
            java, parts = getattr(exc, "java_exception", None), []
            while java is not None and len(parts) < 8:
                # The credential classes on the failing stack say which step failed (their messages may not).
                auth = sorted({f.getClassName().rsplit(".", 1)[-1] for f in java.getStackTrace()
                               if ".auth." in f.getClassName() or "oauth2" in f.getClassName()})
                parts.append(f"{java.getClass().getName()}: {java.getMessage()}" + (f" [in {auth}]" if auth else ""))
                java = java.getCause()
            return " <- ".join(" ".join(p.split()) for p in parts) or " ".join(str(exc).split())
    out["gs"] = failure("gs://tfscore-bucket/x")
    out["abfs"] = failure("abfss://data@tfscoretest.dfs.core.windows.net/x")
    print("RESULT " + json.dumps(out))
    spark.stop()
""")


def test_web_identity_and_no_credentials_in_a_fresh_jvm(moto_sts, tmp_path):
    """A JVM whose environment has no static AWS keys: S3A authenticates by web identity (moto's STS answers
    AssumeRoleWithWebIdentity), and gs/abfs reads with no credential at all fail naming the missing credential."""
    import boto3

    boto3.client("s3", endpoint_url=moto_sts, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="x").create_bucket(Bucket="irsa")
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZnNjb3JlIn0.c2ln")  # moto does not verify the token
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOOGLE_", "AZURE_"))}
    env.update({"AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/scorer",
                "AWS_ROLE_SESSION_NAME": "tfscore-test", "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": moto_sts,  # S3 and STS (the SDK's global endpoint variable)
                "AWS_EC2_METADATA_DISABLED": "true",  # never reach for 169.254.169.254
                "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9", "NO_GCE_CHECK": "True",
                "SPARK_LOCAL_IP": "127.0.0.1"})
    extra = {"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1",
             "spark.hadoop.fs.gs.storage.root.url": "http://127.0.0.1:9", "spark.hadoop.fs.gs.http.max.retry": "0"}
    proc = subprocess.run([sys.executable, "-c", IRSA_SCRIPT, json.dumps(extra)], env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    out = json.loads(lines[0][len("RESULT "):])
    assert out["after_close"] > 0 and out["rows"] == 5
    for scheme in ("gs", "abfs"):
        assert out[scheme] != "no error" and "ClassNotFound" not in out[scheme], out[scheme]
        print(f"{scheme} without credentials: {out[scheme]}")
    # COMPUTE_ENGINE (no GOOGLE_APPLICATION_CREDENTIALS): the token request to the metadata server fails. The
    # connector's own message is only the connection error; the stack shows it is the credential step.
    assert "ComputeEngineCredentials" in out["gs"], out["gs"]
    assert "fs.azure.account.key" in out["abfs"] or "account key" in out["abfs"].lower(), out["abfs"]
