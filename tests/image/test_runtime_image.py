"""The runtime image as the operator runs it: doctor passes and the manifest matches; the demo ScoringJob scores inside a
read-only container as uid 1000 and its Parquet output is complete on the host; an image without Java or with a broken
TensorFlow fails doctor with one clear sentence; the entrypoint refuses an executor start without Spark's environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
from imagekit import MANIFEST, ROOT, UID, derived_image, run, shared_dir

ROWS = 20_000


def error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert lines, f"no error line in:\n{stderr}"
    return lines[-1]


def test_doctor_passes_and_matches_the_manifest(runtime_image):
    res = run(runtime_image, "tfscore", "doctor", "--check-manifest", MANIFEST, "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["ok"] and report["error"] is None
    verdicts = {c["name"]: c["ok"] for c in report["checks"]}
    assert verdicts == {"python": True, "glibc": True, "cpu": True, "tensorflow": True, "keras": True, "java": True,
                        "spark": True, "gpu": None, "manifest": True}
    recorded = json.loads(run(runtime_image, "cat", MANIFEST).stdout)
    assert recorded["image"] == runtime_image  # the build labelled its own manifest
    assert recorded["glibc"] == "2.36" and recorded["tensorflow"] == "tensorflow-cpu 2.21.0"
    assert recorded["spark"] == recorded["pyspark"] == "4.3.0" and recorded["java"].startswith("17.")


def test_image_runs_as_uid_1000_with_no_writable_root(runtime_image):
    res = run(runtime_image, "bash", "-c", "id -u; touch /opt/tfscore/x 2>&1; touch /tmp/ok && echo tmp-writable")
    assert res.stdout.splitlines()[0] == str(UID)
    assert "Read-only file system" in res.stdout and "tmp-writable" in res.stdout


def test_demo_job_in_a_read_only_container(runtime_image, tmp_path):
    work = shared_dir(tmp_path / "work")
    res = run(runtime_image, "tfscore", "demo", "--dir", "/work/demo", "--rows", str(ROWS), volumes={str(work): "/work"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"rows in          {ROWS:,}" in res.stdout
    out = work / "demo" / "out" / "scores"
    table = pq.read_table(out)  # written by uid 1000 in the container, read here on the host
    quarantined = pq.read_table(work / "demo" / "out" / "quarantine").num_rows \
        if (work / "demo" / "out" / "quarantine").exists() else 0
    assert table.num_rows + quarantined == ROWS
    assert {"txn_id", "user_id", "risk_score"} <= set(table.column_names)
    assert table["txn_id"].to_pylist() and len(set(table["txn_id"].to_pylist())) == table.num_rows
    run_manifest = json.loads((out / "_tfscore.json").read_text())
    assert run_manifest["result"]["rowsIn"] == ROWS
    assert run_manifest["result"]["rowsOut"] == table.num_rows
    files = [p for p in out.rglob("*.parquet")]
    assert files and all(p.stat().st_uid == UID for p in files)


def test_image_without_java_fails_doctor(runtime_image):
    # Java removed the way an operator would (dpkg), JAVA_HOME still pointing at it.
    image = derived_image(runtime_image, "no-java", f"""FROM {runtime_image}
USER root
RUN dpkg --purge --force-depends openjdk-17-jre-headless >/dev/null 2>&1 && rm -rf /usr/lib/jvm
USER {UID}:{UID}
""")
    res = run(image, "tfscore", "doctor")
    assert res.returncode == 1
    assert error_line(res.stderr) == (
        "error: no Java runtime found (JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 has no bin/java): Spark needs "
        "Java 17 or newer; use the tfscore runtime image or install openjdk-17-jre-headless")
    assert "FAIL  java" in res.stdout


def test_image_with_broken_tensorflow_fails_doctor(runtime_image):
    # A partial install: TensorFlow's framework library is gone.
    image = derived_image(runtime_image, "broken-tf", f"""FROM {runtime_image}
USER root
RUN rm /opt/tfscore/venv/lib/python3.11/site-packages/tensorflow/libtensorflow_framework.so.2
USER {UID}:{UID}
""")
    res = run(image, "tfscore", "doctor")
    assert res.returncode == 1
    line = error_line(res.stderr)
    assert line.startswith("error: TensorFlow (tensorflow-cpu 2.21.0) does not load and run here: ImportError: "
                           "libtensorflow_framework.so.2: cannot open shared object file")
    assert line.endswith("rebuild the image from its locked requirements (make image-runtime) and run it unmodified")


def test_a_modified_environment_fails_the_manifest_check(runtime_image, tmp_path):
    # Another pyarrow shadowing the image's (a mounted site-packages): the manifest check names the field.
    fake = shared_dir(tmp_path / "site")
    dist = fake / "pyarrow-15.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pyarrow\nVersion: 15.0.0\n")
    res = run(runtime_image, "python", "-c",
              "import sys; sys.path.insert(0, '/extra'); from tfscore.runtime.doctor import checks; "
              f"print(checks.check_manifest(checks.facts(), '{MANIFEST}').error)",
              volumes={str(fake): "/extra"})
    assert res.returncode == 0, res.stderr
    assert "pyarrow is 15.0.0 here but 26.0.1 in the manifest" in res.stdout, res.stdout


def test_executor_entrypoint_needs_sparks_environment(runtime_image):
    res = run(runtime_image, "executor")
    assert res.returncode == 64
    assert ("SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_EXECUTOR_MEMORY SPARK_APPLICATION_ID not set"
            in res.stderr)


def test_gpu_discovery_prints_sparks_resource_json(tmp_path):
    script = ROOT / "images" / "runtime" / "gpu-discovery.sh"
    fake = tmp_path / "bin"
    fake.mkdir()
    smi = fake / "nvidia-smi"
    smi.write_text('#!/bin/sh\n[ "$1 $2" = "--query-gpu=index --format=csv,noheader" ] || exit 9\nprintf "0\\n 1\\n"\n')
    smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:/usr/bin:/bin"}
    out = subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == {"name": "gpu", "addresses": ["0", "1"]}
    missing = subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True,
                             env={**os.environ, "PATH": str(Path("/nonexistent"))})
    assert missing.returncode == 1 and "nvidia-smi not found" in missing.stderr


def test_both_spark_jvms_map_their_class_data_sharing_archive(runtime_image):
    """images/runtime/cds.sh's archives map (-Xshare:on: a JVM that cannot map its archive does not start) into the
    executor's JVM, with the classpath images/runtime/entrypoint.sh gives it, and into the driver's, started by the
    runtime's own options through pyspark's launcher, as a run starts it."""
    executor = run(runtime_image, "bash", "-c", 'java -Xshare:on -XX:SharedArchiveFile="$TFSCORE_CDS_DIR/executor.jsa" '
                                                '-cp "/opt/spark/conf:$SPARK_HOME/jars/*" -version')
    assert executor.returncode == 0, executor.stderr[-2000:]
    driver = run(runtime_image, "python", "-c", (
        "import os\nfrom pyspark.sql import SparkSession\nfrom tfscore.runtime.session import driver_java_options\n"
        "options = driver_java_options('local[1]', os.environ)\n"
        "assert any('driver.jsa' in o for o in options), options\n"
        "spark = (SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false')\n"
        "         .config('spark.driver.extraJavaOptions', ' '.join([*options, '-Xshare:on'])).getOrCreate())\n"
        "print(spark.range(10).count())\n"), env={"SPARK_LOCAL_IP": "127.0.0.1"})
    assert driver.returncode == 0 and driver.stdout.strip().splitlines()[-1] == "10", driver.stderr[-3000:]
