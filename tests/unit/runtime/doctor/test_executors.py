"""The one-image check of driver and executors (runtime/doctor/executors.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa
import pytest

from tfscore.runtime.doctor import executors, facts
from tfscore.runtime.errors import TfscoreError

from .manifests import MANIFEST, OTHER


class FakeContext:
    """range(...).mapInArrow(f, schema).collect(): runs f once per partition, each "on" the executor of `placement`."""

    def __init__(self, placement, monkeypatch):
        self.placement, self.monkeypatch = placement, monkeypatch
        self.defaultParallelism = len(placement)

    def range(self, n, numPartitions):  # noqa: N803 - Spark's name
        assert n == numPartitions == len(self.placement)
        return self

    def mapInArrow(self, fn, schema):  # noqa: N802 - Spark's name
        assert schema == "report string"
        self.fn = fn
        return self

    def collect(self):
        out = []
        for i, (executor, manifest, drift) in enumerate(self.placement):
            self.monkeypatch.setenv("SPARK_EXECUTOR_ID", executor)
            self.monkeypatch.setenv("SPARK_EXECUTOR_POD_NAME", f"job-a1-exec-{executor}")
            self.monkeypatch.setattr(executors, "worker_manifest", lambda m=manifest, d=drift: (m, d))
            for batch in self.fn(iter([pa.record_batch([pa.array([i])], names=["id"])])):
                out.extend(SimpleNamespace(**row) for row in batch.to_pylist())
        return out


class FakeSpark:
    def __init__(self, sc):
        self.sparkContext = sc

    def range(self, n, numPartitions):  # noqa: N803 - Spark's name
        return self.sparkContext.range(n, numPartitions)


def test_check_executors_passes_when_all_match(monkeypatch):
    sc = FakeContext([("1", MANIFEST, None), ("2", MANIFEST, None)] * 2, monkeypatch)
    executors.check_executors(FakeSpark(sc), MANIFEST)


def test_check_executors_names_the_executor_that_differs(monkeypatch):
    odd = {**MANIFEST, "image": OTHER["image"], "tensorflow": OTHER["tensorflow"]}
    sc = FakeContext([("1", MANIFEST, None), ("10", MANIFEST, None), ("2", odd, None), ("2", odd, None)], monkeypatch)
    with pytest.raises(TfscoreError) as err:
        executors.check_executors(FakeSpark(sc), MANIFEST)
    text = str(err.value)
    assert text.startswith("executor 2 on job-a1-exec-2 runs localhost/tfscore/runtime:bbbbbbbbbbbb but the driver "
                           "runs localhost/tfscore/runtime:aaaaaaaaaaaa (TensorFlow tensorflow-cpu 2.20.0 vs "
                           "tensorflow-cpu 2.21.0)")


def test_check_executors_reports_an_executor_drifting_from_its_own_manifest(monkeypatch):
    sc = FakeContext([("1", MANIFEST, None), ("2", MANIFEST, "this environment differs from …")], monkeypatch)
    with pytest.raises(TfscoreError, match=r"^executor 2 on job-a1-exec-2: this environment differs"):
        executors.check_executors(FakeSpark(sc), MANIFEST)


def test_check_executors_turns_a_failed_report_into_one_sentence(monkeypatch):
    class Broken(FakeContext):
        def collect(self):
            raise RuntimeError("An error occurred while calling o42.collectAndServe.\n: org.apache.spark.SparkException: "
                               "Job aborted due to stage failure: org.apache.spark.api.python.PythonException: "
                               "Traceback (most recent call last):\n  File \"worker.py\", line 1\n"
                               "ModuleNotFoundError: No module named 'tfscore'\n\tat org.apache.spark.api.python")

    with pytest.raises(TfscoreError) as err:
        executors.check_executors(FakeSpark(Broken([("1", MANIFEST, None)] * 2, monkeypatch)), MANIFEST)
    assert str(err.value) == ("the executors could not report their image manifest (ModuleNotFoundError: No module "
                              "named 'tfscore'): run them from the driver's tfscore runtime image "
                              "(spark.kubernetes.container.image) with PYSPARK_PYTHON=/opt/tfscore/venv/bin/python")


@pytest.mark.parametrize("text,cause", [
    ("java.io.IOException: Cannot run program \"/work/.venv/bin/python\": error=2, No such file or directory\n\tat x",
     'Cannot run program "/work/.venv/bin/python": error=2, No such file or directory'),
    ("Job aborted\nmore", "Job aborted"),
])
def test_spark_failure_cause(text, cause):
    assert executors.spark_failure(text) == cause


@pytest.mark.parametrize("master,env,wanted", [
    ("local[*]", {}, False), ("local[2,4]", {"TFSCORE_CHECK_EXECUTORS": "1"}, True),
    ("k8s://https://kubernetes.default.svc:443", {}, True), ("spark://m:7077", {"TFSCORE_CHECK_EXECUTORS": "0"}, True),
])
def test_executor_check_wanted(master, env, wanted):
    assert executors.executor_check_wanted(master, env) is wanted


def test_driver_manifest_fails_on_drift_and_falls_back_to_live_facts(tmp_path, monkeypatch):
    live = {k: v for k, v in MANIFEST.items() if k not in facts.LABELS}
    monkeypatch.setattr(executors, "facts", lambda: dict(live))
    assert executors.driver_manifest(tmp_path / "absent.json") == live
    path = tmp_path / "m.json"
    facts.write_manifest(path, MANIFEST)
    assert executors.driver_manifest(path) == MANIFEST
    monkeypatch.setattr(executors, "facts", lambda: {**live, "java": "21.0.5"})
    with pytest.raises(TfscoreError, match="Java is 21.0.5 here but 17.0.21.1"):
        executors.driver_manifest(path)


def test_each_check_task_then_prepares_its_worker_and_a_failing_preparation_is_left_to_the_tasks(monkeypatch):
    prepared = []
    sc = FakeContext([("1", MANIFEST, None), ("2", MANIFEST, None)], monkeypatch)
    executors.check_executors(FakeSpark(sc), MANIFEST, prepare=lambda: prepared.append(1))
    assert prepared == [1, 1]

    def broken():
        raise ImportError("libtensorflow_framework.so.2: cannot open shared object file")

    executors.check_executors(FakeSpark(sc), MANIFEST, prepare=broken)  # the scoring tasks will say it, in their words
    drifting = FakeContext([("1", MANIFEST, "numpy 2.4.6 → 2.4.7"), ("2", MANIFEST, None)], monkeypatch)
    with pytest.raises(TfscoreError, match="executor 1"):
        executors.check_executors(FakeSpark(drifting), MANIFEST, prepare=lambda: prepared.append(2))
    assert prepared.count(2) <= 1  # a drifted worker is not prepared
