"""The SparkSession a job runs in: local mode on a laptop, or the Kubernetes conf the operator wrote for the driver pod."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tfscore.api import properties
from tfscore.runtime.errors import TfscoreError


def read_properties(path: str | None) -> dict[str, str]:
    """The operator's spark.properties (java.util.Properties rules, shared with the writer in tfscore.api.properties)."""
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TfscoreError(f"--spark-properties: cannot read {path}: {exc.strerror or exc}") from exc
    return properties.parse(text)


def in_pod_overrides(conf: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """Inside a driver pod, reach the API server and be reached by executors by IP, so a cluster without (or with a
    slow) DNS still works: the API server from KUBERNETES_SERVICE_HOST/PORT, the driver by its pod IP.

    The driver also binds to its pod IP: Spark >= 4.1 on Kubernetes (spark.kubernetes.executor.useDriverPodIP, on by
    default) hands executors spark.driver.bindAddress as the driver's address, so a wildcard 0.0.0.0 there made every
    executor dial 0.0.0.0:7078 and die ("Connection refused")."""
    out: dict[str, str] = {}
    master = conf.get("spark.master", "")
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if master.startswith("k8s://") and host:
        ip = f"[{host}]" if ":" in host else host
        out["spark.master"] = f"k8s://https://{ip}:{port}"
    if master.startswith("k8s://") and env.get("POD_IP"):
        out["spark.driver.host"] = env["POD_IP"]
        out["spark.driver.bindAddress"] = env["POD_IP"]
    return out


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
    """Create (or reuse) the SparkSession.

    Precedence: runtime defaults < operator properties < in-pod addresses (by IP) < spec.sparkConf."""
    master = master or properties.get("spark.master") or "local[*]"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    conf = runtime_defaults(spec, master)
    conf.update(properties)
    conf["spark.master"] = master
    conf.update(in_pod_overrides(conf, dict(os.environ)))
    conf.update(spec.spark_conf)
    builder = SparkSession.builder
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("TFSCORE_SPARK_LOG_LEVEL", "ERROR"))
    return spark
