"""Which engine runs a job (runtime/engine.py): the local engine wherever it gives Spark's result, else Spark."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tfscore.api.manifest import parse
from tfscore.runtime.engine import choose, executors_wanted, why_spark
from tfscore.runtime.errors import TfscoreError


def _job(tmp_path, partitioned: bool = False, **spec):
    root = tmp_path / "in"
    where = root / "dt=2026-12-01" if partitioned else root
    where.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"x": [1.0]}), where / "part-0.parquet")
    doc = {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringJob", "metadata": {"name": "t"},
           "spec": {"model": {"uri": str(tmp_path / "m")}, "input": {"uri": str(root)},
                    "output": {"uri": str(tmp_path / "out")}}}
    for key, value in spec.items():
        doc["spec"][key] = {**doc["spec"].get(key, {}), **value}
    return parse(doc, "test")


def test_plain_parquet_in_and_out_on_a_local_master_runs_locally(tmp_path):
    job = _job(tmp_path)
    for master in ("local", "local[2]", "local[*]", "local[2,4]"):
        assert why_spark(job, master, handed=False) is None
        assert choose(job, "auto", master, handed=False) == "local"
    assert choose(job, "spark", "local[2]", handed=False) == "spark"


@pytest.mark.parametrize(("spec", "partitioned", "reason"), [
    ({"input": {"where": "x > 0"}}, False, "its input needs Spark's reader"),
    ({"input": {"format": "csv"}}, False, "its input needs Spark's reader"),
    ({"output": {"format": "orc"}}, False, "its output needs Spark's writer"),
    ({"output": {"partitionBy": ["x"], "passthrough": ["x"]}}, False, "its output needs Spark's writer"),
    ({}, True, "partition directories"),
])
def test_what_needs_spark_is_named_and_auto_takes_spark(tmp_path, spec, partitioned, reason):
    job = _job(tmp_path, partitioned, **spec)
    assert reason in why_spark(job, "local[2]", handed=False)
    assert choose(job, "auto", "local[2]", handed=False) == "spark"
    with pytest.raises(TfscoreError, match=r"^--engine local: this run needs Spark: "):
        choose(job, "local", "local[2]", handed=False)


def test_the_cluster_and_a_handed_session_stay_on_spark(tmp_path):
    job = _job(tmp_path)
    assert "not local" in why_spark(job, "k8s://https://10.0.0.1:443", handed=False)
    assert "handed a SparkSession" in why_spark(job, "local[2]", handed=True)
    with pytest.raises(TfscoreError, match="--engine: 'jvm' is not one of auto, local, spark"):
        choose(job, "jvm", "local[2]", handed=False)


@pytest.mark.parametrize("master, instances, wanted", [
    ("k8s://https://10.0.0.1:443", "2", 2), ("k8s://https://10.0.0.1:443", None, None), ("local[2]", "2", None),
    ("spark://host:7077", "0", None), ("k8s://https://x", "many", None)])
def test_a_run_waits_for_the_executors_it_asked_for_on_a_cluster_only(master, instances, wanted):
    assert executors_wanted(master, instances) == wanted
