"""The SparkSession a job runs in: local mode on a laptop, or the Kubernetes conf the operator wrote for the driver pod."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tfscore.api import properties
from tfscore.runtime import arrow_types, cloud
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


def resolve_master(master: str | None, properties: dict[str, str]) -> str:
    """--master, else the operator's spark.master, else local mode on every core."""
    return master or properties.get("spark.master") or "local[*]"


def is_local_master(master: str) -> bool:
    """Spark's local masters (local, local[N], local[N,F], local-cluster[…]): everything runs on this machine, with
    this process's environment and image; any other master (k8s://…) has executors of their own elsewhere. The one
    place this is decided: the local run's environment, the driver's JVM options, the daemon module, the executors'
    check and the executor count all follow it."""
    return master.startswith("local")


def expand(value: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(NAME)` expansion of an env value: a known name is replaced, an unknown reference stays as written,
    `$$` is a literal `$` (k8s.io/kubernetes third_party/forked/golang/expansion)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch != "$" or i + 1 == len(value):
            out.append(ch)
            i += 1
            continue
        nxt = value[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = value.find(")", i + 2)
            if end < 0:  # incomplete reference: as written
                out.append("$(")
                i += 2
            else:
                name = value[i + 2:end]
                found = lookup(name)
                out.append(found if found is not None else f"$({name})")
                i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def local_environment(spec, environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What spec.env gives a local run, as a container would get it: entries in order, `$(NAME)` expanded from earlier
    entries and then the environment. Only Kubernetes can resolve valueFrom and envFrom (Secrets, ConfigMaps, the pod's
    fields): a variable already set in the environment keeps its value, else it stays unset; each gets a note."""
    env: dict[str, str] = {}
    notes: list[str] = []

    def lookup(name: str) -> str | None:
        return env[name] if name in env else environ.get(name)

    for i, entry in enumerate(spec.env):
        if entry.value_from is not None:
            source = ", ".join(sorted(entry.value_from)) or "valueFrom"
            kept = "kept from this shell" if entry.name in environ else "left unset: export it to set it"
            notes.append(f"spec.env[{i}] {entry.name}: {source} is resolved only by Kubernetes; {kept}")
            continue
        env[entry.name] = expand(entry.value or "", lookup)
    for i, entry in enumerate(spec.env_from):
        ref = next((f"{k} {v.get('name', '')}".strip() for k, v in entry.items() if isinstance(v, dict)), "envFrom")
        notes.append(f"spec.envFrom[{i}] ({ref}) is resolved only by Kubernetes; not applied to a local run")
    return env, notes


@contextmanager
def applied_environment(spec, master: str) -> Iterator[None]:
    """spec.env for a local run: in this process (the model and file-system clients read it here) and so in the JVM it
    starts and every Python worker that JVM forks, then restored. On Kubernetes the pod spec carries it instead."""
    if not is_local_master(master) or not (spec.env or spec.env_from):
        yield
        return
    env, notes = local_environment(spec, os.environ)
    for note in notes:
        print(f"tfscore: note: {note}", file=sys.stderr)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def driver_java_options(master: str, env: Mapping[str, str]) -> list[str]:
    """The driver JVM's options: the runtime's log4j configuration; the image's class-data-sharing archive of the
    driver's classes (images/runtime/cds.sh: ~6 s sooner ready); and on a cluster, where the driver JVM schedules
    and never runs the data path, the C1 compiler alone (less compiling on its one core while it starts)."""
    options = [f"-Dlog4j2.configurationFile=file:{Path(__file__).with_name('log4j2.properties')}"]
    archive = Path(env.get("TFSCORE_CDS_DIR") or "/nonexistent") / "driver.jsa"
    if os.access(archive, os.R_OK):
        options.append(f"-XX:SharedArchiveFile={archive}")
    if not is_local_master(master):
        options.append("-XX:TieredStopAtLevel=1")
    return options


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
        # One time zone for every run and host: timestamps (and partition values) mean the same instants everywhere.
        "spark.sql.session.timeZone": arrow_types.TIMEZONE,
        # Parquet timestamps as the Arrow writer writes them (INT64 microseconds, UTC-adjusted), not Spark's legacy INT96:
        # the two writers' files then have the same types.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }
    conf["spark.driver.extraJavaOptions"] = " ".join(driver_java_options(master, os.environ))
    if not is_local_master(master):  # a cluster master
        # The executors' Python daemon hands each new worker connection to a warm process of the executor's pool
        # (tfscore.runtime.prewarm: TensorFlow imported while the executor JVM started), else forks as pyspark's does.
        # Not on a local master: its only executor is the driver, which has no pool.
        conf["spark.python.daemon.module"] = "tfscore.runtime.daemon"
    else:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        conf["spark.driver.memory"] = spec.driver.memory
        conf["spark.ui.enabled"] = "false"
        conf["spark.sql.shuffle.partitions"] = "8"
        conf.setdefault("spark.driver.bindAddress", "127.0.0.1")
        conf.setdefault("spark.driver.host", "127.0.0.1")
    return conf


# Set after the job's own sparkConf: input.where is user SQL, and must not read arbitrary files by path
# (SELECT … FROM parquet.`/any/path`).
HARDENED = {"spark.sql.runSQLOnFiles": "false"}


@contextmanager
def job_settings(spark, spec):
    """A run on a SparkSession it was handed (tests, notebooks) gets the SQL settings a run of its own has — the time
    zone, Parquet timestamp type, Arrow batch size, the job's sparkConf (its SQL and spark.tfscore.* keys) and the
    hardening — for the run's duration; the caller's values come back afterwards. Without them the same job wrote other
    types than `tfscore run` does, and ignored its split size. The session itself is kept (its temporary views are the
    job's input.table); settings fixed at start-up stay the caller's."""
    conf = {**runtime_defaults(spec, spark.sparkContext.master), **spec.spark_conf, **HARDENED}
    saved: dict[str, str | None] = {}
    try:
        for key, value in conf.items():
            # spark.tfscore.* are the runtime's own knobs (split size, fault injection), read from the session's conf.
            if key.startswith("spark.tfscore.") or key.startswith("spark.sql.") and spark.conf.isModifiable(key):
                saved[key] = spark.conf.get(key, None)
                spark.conf.set(key, value)
        yield spark
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def build_session(spec, master: str | None, properties: dict[str, str]):
    """Create (or reuse) the SparkSession.

    Precedence: runtime defaults < the object stores' conf from the environment (tfscore.runtime.cloud: the same
    variables fsspec reads) < operator properties < in-pod addresses (by IP) < spec.sparkConf."""
    master = resolve_master(master, properties)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    conf = runtime_defaults(spec, master)
    conf.update(cloud.spark_conf(os.environ))
    conf.update(properties)
    conf["spark.master"] = master
    conf.update(in_pod_overrides(conf, dict(os.environ)))
    conf.update(spec.spark_conf)
    conf.update(HARDENED)
    builder = SparkSession.builder
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    # WARN and above: in a pod they are the pod log; locally they go to the run's log file (tfscore.runlog). A job's
    # own sparkConf spark.log.level (Spark's setting for this) is kept, e.g. INFO to see the scheduler at work.
    level = conf.get("spark.log.level") or os.environ.get("TFSCORE_SPARK_LOG_LEVEL", "WARN")
    spark.sparkContext.setLogLevel(level)
    return spark
