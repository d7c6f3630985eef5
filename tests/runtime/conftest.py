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
def s3_endpoint():
    """A real S3 API server (moto) on loopback. Its address and credentials go into the environment before the Spark
    JVM starts, so Spark's Python workers inherit them exactly as executor pods get theirs from Secrets."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update({"AWS_ACCESS_KEY_ID": "tfscore", "AWS_SECRET_ACCESS_KEY": "tfscore-secret",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                       "AWS_ENDPOINT_URL_S3": endpoint})
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def spark(s3_endpoint):
    from pyspark.sql import SparkSession

    # local[2,4]: two cores, and up to four attempts per task, so retries behave as on a cluster.
    session = (SparkSession.builder.master("local[2,4]").appName("tfscore-tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "2g")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.warehouse.dir", str(Path(os.environ.get("TMPDIR", "/tmp")) / "tfscore-warehouse"))
               .getOrCreate())
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
