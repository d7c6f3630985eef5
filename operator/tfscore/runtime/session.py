"""The SparkSession a job runs in: local mode on a laptop, or the Kubernetes conf the operator wrote for the driver pod."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tfscore.runtime.errors import TfscoreError


def read_properties(path: str | None) -> dict[str, str]:
    """A Java-style `key=value` properties file (the operator's spark.properties); '#' comments, blank lines ignored."""
    if not path:
        return {}
    conf: dict[str, str] = {}
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise TfscoreError(f"--spark-properties: cannot read {path}: {exc}") from exc
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise TfscoreError(f"--spark-properties: {path}:{n}: expected key=value, got {line!r}")
        conf[key.strip()] = value.strip()
    return conf


def runtime_defaults(spec, master: str) -> dict[str, str]:
    """What tfscore always wants from Spark (the job's sparkConf and the operator's properties may override)."""
    conf = {
        "spark.app.name": "tfscore",
        "spark.python.worker.reuse": "true",  # one model per Python worker, reused across tasks
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(spec.batch_size),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.sources.partitionOverwriteMode": "static",
        "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "1",
        "spark.sql.parquet.compression.codec": "snappy",
    }
    log4j = Path(__file__).with_name("log4j2.properties")
    conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{log4j}"
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        conf["spark.driver.memory"] = spec.driver.memory
        conf["spark.ui.enabled"] = "false"
        conf["spark.sql.shuffle.partitions"] = "8"
        conf.setdefault("spark.driver.bindAddress", "127.0.0.1")
        conf.setdefault("spark.driver.host", "127.0.0.1")
    return conf


def build_session(spec, master: str | None, properties: dict[str, str]):
    """Create (or reuse) the SparkSession. Precedence: runtime defaults < operator properties < spec.sparkConf."""
    master = master or properties.get("spark.master") or "local[*]"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    conf = runtime_defaults(spec, master)
    conf.update(properties)
    conf.update(spec.spark_conf)
    conf["spark.master"] = master
    builder = SparkSession.builder
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("TFSCORE_SPARK_LOG_LEVEL", "ERROR"))
    return spark
