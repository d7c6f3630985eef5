"""Executors started the way Spark on Kubernetes starts them, from the runtime image's entrypoint.

The driver runs `tfscore run` with a k8s:// master pointing at a stand-in API server (podkube.FakeKube); every executor
Pod Spark creates becomes a podman container with the Pod's image, args, env and volumes. So the entrypoint's
`executor` branch must turn Spark's SPARK_* contract into a KubernetesExecutorBackend that registers, runs Python tasks
in the image's venv and scores. The executor manifest check is active (non-local master): a driver in the same image
passes; a driver outside the image (the host venv) fails fast, naming the executor and both images.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from imagekit import run_args, shared_dir
from podkube import FakeKube

ROWS = 3_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_properties(path: Path, image: str, instances: int = 1) -> Path:
    props = {
        "spark.submit.deployMode": "client",
        "spark.kubernetes.namespace": "default",
        "spark.kubernetes.container.image": image,
        "spark.kubernetes.executor.podNamePrefix": "tfs-it",
        "spark.kubernetes.executor.enableApiWatcher": "false",  # FakeKube answers polls, not watches
        "spark.kubernetes.executor.apiPollingInterval": "1s",
        "spark.kubernetes.allocation.batch.delay": "1s",
        "spark.executor.instances": str(instances),
        "spark.executor.cores": "1",
        "spark.executor.memory": "1g",
        "spark.executorEnv.TF_NUM_INTRAOP_THREADS": "1",
        "spark.executorEnv.TF_NUM_INTEROP_THREADS": "1",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.port": str(free_port()),
        "spark.driver.blockManager.port": str(free_port()),
        "spark.ui.enabled": "false",
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",  # start once every executor registered
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "300s",
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def test_executors_from_the_entrypoint_score_a_job(runtime_image, tmp_path):
    data = shared_dir(tmp_path / "data")
    conf = shared_dir(tmp_path / "conf")
    write_properties(conf / "spark.properties", runtime_image)
    prep = subprocess.run(run_args(runtime_image, "python", "-c",
                                   f"from tfscore.runtime.demo import prepare; print(prepare('/data/demo', {ROWS}))",
                                   volumes={str(data): "/data"}), capture_output=True, text=True, timeout=600)
    assert prep.returncode == 0, prep.stderr[-2000:]

    with FakeKube(tmp_path / "kube", volumes={str(data): "/data"}) as kube:
        driver = subprocess.run(run_args(runtime_image, "tfscore", "run", "/data/demo/demo-job.yaml", "--json",
                                         "--master", kube.master, "--spark-properties", "/conf/spark.properties",
                                         volumes={str(data): "/data", str(conf): "/conf:ro"}, network="host"),
                                capture_output=True, text=True, timeout=900)
        logs = kube.logs()
    assert driver.returncode == 0, f"{driver.stderr[-4000:]}\n{logs[-4000:]}"
    result = json.loads(driver.stdout)
    assert result["rowsIn"] == ROWS and result["rowsOut"] + result["rowsQuarantined"] == ROWS
    assert pq.read_table(data / "demo" / "out" / "scores").num_rows == result["rowsOut"]

    (pod,) = kube.executor_logs  # one executor, started from Spark's own Pod spec
    assert pod == "tfs-it-exec-1"
    text = kube.executor_logs[pod]
    assert "Successfully registered with driver" in text, text[-3000:]
    assert "Running task" in text  # the tasks (manifest report + scoring) ran in the executor container
    # The entrypoint's warm process (tfscore.runtime.prewarm) served the executor's Python worker: TensorFlow was
    # imported while the executor JVM started, and the check's and scoring tasks ran in it.
    check = json.loads((data / "demo" / "out" / "scores" / "_tfscore.json").read_text())["executorCheck"]
    assert check["executors"] == 1 and check["warmPythonWorkers"] == check["pythonWorkers"] >= 1, (check, text[-3000:])
    assert "tfscore prewarm: ready in" in text, text[-3000:]
    assert "tfscore prewarm: not serving" not in text and "tfscore prewarm: stopped" not in text, text[-3000:]


def test_a_driver_outside_the_image_fails_fast_naming_the_executor(runtime_image, tmp_path):
    # A laptop-style client-mode driver (this venv) against executors running the image: the manifests differ.
    pytest.importorskip("pyspark")
    data = shared_dir(tmp_path / "data")
    conf = write_properties(shared_dir(tmp_path / "conf") / "spark.properties", runtime_image)
    from tfscore.runtime.demo import prepare

    job = prepare(data / "demo", 500)
    env = {**os.environ, "PYSPARK_PYTHON": "/opt/tfscore/venv/bin/python",  # the executors' interpreter
           "TFSCORE_IMAGE_MANIFEST": str(tmp_path / "no-manifest-here.json")}
    with FakeKube(tmp_path / "kube", volumes={str(data): str(data)}) as kube:
        driver = subprocess.run([sys.executable, "-m", "tfscore.cli", "run", str(job), "--master", kube.master,
                                 "--spark-properties", str(conf)], capture_output=True, text=True, timeout=900,
                                env=env)
        logs = kube.logs()
    assert driver.returncode == 2, f"{driver.stderr[-4000:]}\n{logs[-3000:]}"
    error = [ln for ln in driver.stderr.splitlines() if ln.startswith("error: ")][-1]
    assert error.startswith(f"error: executor 1 on tfs-it-exec-1 runs {runtime_image} but the driver runs an "
                            "unlabelled image ("), error
    assert error.endswith("so native libraries and versions match")
    assert not (data / "demo" / "out" / "scores").exists()  # failed before touching data
