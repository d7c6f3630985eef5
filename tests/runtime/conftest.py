"""Runtime tier: real Spark (local mode) and real SavedModels built here by tfscore.testing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

from tfscore import testing  # noqa: E402
from tfscore.api.manifest import parse  # noqa: E402

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="session")
def seaweed():
    """A real S3 server (SeaweedFS, hack/s3) on loopback, from an empty state. Its address and credentials go into the
    environment before the Spark JVM starts, so Spark's Python workers (and S3A) inherit them exactly as executor pods
    get theirs from Secrets. Under CI=true weed is built when missing; elsewhere a missing build skips."""
    from harness.common import CACHE, CI, Unavailable, skip_or_fail, tier_dir
    from harness.seaweedfs import SeaweedFS

    server = SeaweedFS(CACHE, tier_dir("runtime-tier") / "s3")  # its own with a port offset: stop(purge) is not shy
    try:
        server.stop(purge=True)  # a previous run killed before its teardown
        server.start(build=CI)
    except Unavailable as exc:
        skip_or_fail("runtime", f"no S3 server: {exc}")
    os.environ.update(server.env())
    yield server
    server.stop(purge=True)


@pytest.fixture(scope="session")
def s3_endpoint(seaweed) -> str:
    return seaweed.endpoint


@pytest.fixture(scope="session")
def moto_sts():
    """moto's STS (and S3) on loopback: only where a fault must be injected or SeaweedFS has no counterpart (web
    identity: an STS that accepts any token)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def spark(s3_endpoint):
    from pyspark.sql import SparkSession

    from tfscore.runtime import cloud

    # local[2,4]: two cores, and up to four attempts per task, so retries behave as on a cluster. The object stores'
    # Hadoop conf comes from the same environment as fsspec's (tfscore.runtime.cloud), as in a real run.
    builder = (SparkSession.builder.master("local[2,4]").appName("tfscore-tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "2g")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.warehouse.dir", str(Path(os.environ.get("TMPDIR", "/tmp")) / "tfscore-warehouse")))
    for key, value in cloud.spark_conf(os.environ).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("FATAL")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    testing.mlp(root / "mlp", features=8, hidden=(16,))
    testing.mlp(root / "mlp", features=8, hidden=(16,), version=2, seed=1)
    testing.cnn(root / "cnn")
    testing.two_in_two_out(root / "two")
    testing.string_int_model(root / "words")
    return {"root": root, "mlp": root / "mlp", "cnn": root / "cnn", "two": root / "two", "words": root / "words"}


@pytest.fixture
def run(spark):
    from tfscore.runtime.job import RunOptions, run_job

    def _run(doc: dict):
        return run_job(parse(doc, "test"), RunOptions(spark=spark))

    return _run
