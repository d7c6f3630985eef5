"""Pure pieces of the runtime, without Spark or TensorFlow: column binding, validation, staging and commit, manifests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tfscore.api.common import memory_mib
from tfscore.api.manifest import ManifestError, load
from tfscore.runtime import io
from tfscore.runtime.binding import bind
from tfscore.runtime.errors import TfscoreError, WorkerError, unwrap
from tfscore.runtime.model import Signature, TensorInfo

SIG = Signature("serving_default",
                inputs={"x": TensorInfo("x", "float32", (None, 3)), "img": TensorInfo("img", "float32", (None, 2, 2, 1)),
                        "w": TensorInfo("w", "string", (None,))},
                outputs={"p": TensorInfo("p", "float32", (None, 1)), "e": TensorInfo("e", "float32", (None, 4))})


def schema(**fields):
    return pa.schema([pa.field(k, v) for k, v in fields.items()])


BASE = dict(id=pa.int64(), a=pa.float64(), b=pa.float32(), c=pa.int32(), pix=pa.list_(pa.float32()), w=pa.string())


def test_bind_kinds_and_output_schema():
    b = bind(SIG, schema(**BASE), {"x": ["a", "b", "c"], "img": "pix"}, ["id"], {}, "src")
    kinds = {i.tensor.name: (i.kind, i.columns) for i in b.inputs}
    assert kinds == {"x": ("stack", ("a", "b", "c")), "img": ("array", ("pix",)), "w": ("scalar", ("w",))}
    assert b.output_schema() == pa.schema([("id", pa.int64()), ("p", pa.float32()), ("e", pa.list_(pa.float32()))])
    assert b.read_columns == ["id", "a", "b", "c", "pix", "w"]


@pytest.mark.parametrize("columns, fields, needle", [
    ({"x": ["a", "b"], "img": "pix"}, BASE, "2 columns stack into [None, 2]"),
    ({"x": ["a", "b", "zz"], "img": "pix"}, BASE, "column 'zz' not found in src"),
    ({"x": ["a", "b", "w"], "img": "pix"}, BASE, "column 'w' is string, which cannot be cast"),
    ({"x": ["a", "b", "c"], "img": "a"}, BASE, "column 'a' is a scalar"),
    ({"x": ["a", "b", "c"], "img": "pix", "nope": "a"}, BASE, "input.columns: 'nope' is not an input"),
    ({"x": ["a", "b", "c"], "img": "pix"}, {**BASE, "w": pa.float64()}, "column 'w' is double"),
    ({"x": ["a", "b", "pix"], "img": "pix"}, BASE, "must hold scalar columns"),
])
def test_bind_errors_name_the_column(columns, fields, needle):
    with pytest.raises(TfscoreError, match=None) as info:
        bind(SIG, schema(**fields), columns, [], {}, "src")
    assert needle in str(info.value)


def test_validate_and_convert():
    b = bind(SIG, schema(**BASE), {"x": ["a", "b", "c"], "img": "pix"}, ["id"], {"p": "score"}, "src")
    batch = pa.record_batch({
        "id": pa.array([1, 2, 3], pa.int64()), "a": pa.array([1.0, None, 3.0]), "b": pa.array([1, 2, 3], pa.float32()),
        "c": pa.array([1, 2, 3], pa.int32()),
        "pix": pa.array([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2]], pa.list_(pa.float32())), "w": pa.array(["u", "v", "w"])})
    invalid, reasons = b.validate(batch)
    assert invalid.tolist() == [False, True, True]
    assert reasons[1] == "column 'a' is null" and "has 2 values per row" in reasons[2]
    good = batch.filter(pa.array(~invalid))
    assert b.validate(good) == (None, None)
    t = b.to_tensors(good)
    assert t["x"].dtype == np.float32 and t["x"].tolist() == [[1, 1, 1]]
    assert t["img"].shape == (1, 2, 2, 1) and t["w"].tolist() == ["u"]
    out = b.to_output(good, {"p": np.array([[0.5]], np.float32)})
    assert out.to_pydict() == {"id": [1], "score": [0.5]}


def test_integer_range_checked():
    sig = Signature("s", {"n": TensorInfo("n", "int8", (None,))}, {"o": TensorInfo("o", "int8", (None,))})
    b = bind(sig, schema(n=pa.int64()), {}, [], {}, "src")
    invalid, reasons = b.validate(pa.record_batch({"n": pa.array([1, 300, -5], pa.int64())}))
    assert invalid.tolist() == [False, True, False] and "outside int8's range" in reasons[1]


def _write(path: Path, ids):
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": ids}), path / f"part-{ids[0]}.parquet")


def test_commit_modes(tmp_path):
    final = tmp_path / "out"
    s1 = tmp_path / "s1"
    _write(s1, [1, 2])
    io.commit(str(s1), str(final), "errorIfExists", "r1")
    assert not s1.exists() and io.count_rows(str(final), "parquet") == 2

    s2 = tmp_path / "s2"
    _write(s2, [3])
    io.commit(str(s2), str(final), "append", "r2")
    assert io.count_rows(str(final), "parquet") == 3

    s3 = tmp_path / "s3"
    _write(s3, [9])
    with pytest.raises(TfscoreError, match="appeared while the job ran"):
        io.commit(str(s3), str(final), "errorIfExists", "r3")
    assert io.count_rows(str(final), "parquet") == 3 and s3.exists()
    io.commit(str(s3), str(final), "overwrite", "r3")
    assert sorted(pq.read_table(str(final))["id"].to_pylist()) == [9]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_append_never_overwrites_a_file(tmp_path):
    final, stage = tmp_path / "out", tmp_path / "stage"
    _write(final, [1])
    _write(stage, [1])
    with pytest.raises(TfscoreError, match="append never overwrites"):
        io.commit(str(stage), str(final), "append", "r")


def test_promote_keeps_only_counted_attempts(tmp_path):
    stage = tmp_path / "stage"
    attempts = stage / "_attempts"
    _write(attempts, [1])
    _write(attempts, [2])  # the file of a failed attempt
    io.promote(str(stage), [str(attempts / "part-1.parquet")], "output.uri")
    assert sorted(p.name for p in stage.iterdir()) == ["part-1.parquet"]
    empty = tmp_path / "empty"
    io.promote(str(empty), [], "output.uri", empty_schema=pa.schema([("id", pa.int64())]))
    assert pq.read_table(str(empty)).schema.names == ["id"]


def test_plan_splits_row_groups(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"id": np.arange(10_000)}), d / "a.parquet", row_group_size=1000)
    pq.write_table(pa.table({"id": np.arange(500)}), d / "b.parquet")
    (d / "_SUCCESS").write_text("")
    (d / ".hidden").write_text("")
    plan = io.plan_parquet(str(d), ["id"], parallelism=2, min_rows=1, split_rows=3000)
    assert plan.rows == 10_500 and plan.files == 2
    assert [s.rows for s in plan.splits] == [3000, 3000, 3000, 1000, 500]
    assert [s.first_row for s in plan.splits] == [0, 3000, 6000, 9000, 0]


def test_plan_rejects_schema_drift(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"x": np.arange(3, dtype=np.int64)}), d / "a.parquet")
    pq.write_table(pa.table({"x": ["a", "b"]}), d / "b.parquet")
    with pytest.raises(TfscoreError, match="column 'x' is int64 in .*a.parquet but string in .*b.parquet"):
        io.plan_parquet(str(d), ["x"], 1, 1)


def test_manifest_history(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    io.write_manifest(str(out), {"run": 1}, "append")
    io.write_manifest(str(out), {"run": 2}, "append")
    doc = json.loads((out / io.MANIFEST).read_text())
    assert doc["run"] == 2 and doc["history"] == [{"run": 1}]


def test_worker_errors_unwrap():
    wrapped = WorkerError(TfscoreError("column 'f1' is null at row 3"))
    spark_text = f"org.apache.spark.SparkException: Job aborted ... PythonException: {wrapped} ... at java.lang"
    assert str(unwrap(Exception(spark_text))) == "column 'f1' is null at row 3"
    assert unwrap(Exception("plain failure")) is None


def test_spark_uri():
    assert io.spark_uri("/data/x") == "file:///data/x"
    assert io.spark_uri("s3://b/k") == "s3a://b/k"
    assert io.spark_uri("hdfs://nn/x") == "hdfs://nn/x"


@pytest.mark.parametrize("text, mib", [("512m", 512), ("2g", 2048), ("2Gi", 2048), ("1.5g", 1536), ("1024Ki", 1)])
def test_memory_quantities(text, mib):
    assert memory_mib(text) == mib


def test_manifest_loader_messages(tmp_path):
    p = tmp_path / "job.yaml"
    p.write_text("""apiVersion: tfscore.io/v1alpha1
kind: ScoringJob
metadata: {name: Bad_Name}
spec:
  model: {uri: /m, version: newest}
  input: {uri: /in, table: t}
  output: {uri: /out, mode: replace}
  executor: {memory: lots}
""")
    with pytest.raises(ManifestError) as info:
        load(p)
    msg = str(info.value)
    for needle in ("metadata.name", "spec.model.version", "spec.input", "exactly one of input.uri or input.table",
                   "spec.output.mode", "spec.executor.memory"):
        assert needle in msg, msg


def test_quarantine_needs_uri(tmp_path):
    p = tmp_path / "job.yaml"
    p.write_text("""apiVersion: tfscore.io/v1alpha1
kind: ScoringJob
metadata: {name: q}
spec: {model: {uri: /m}, input: {uri: /in}, output: {uri: /out}, onInvalidRow: quarantine}
""")
    with pytest.raises(ManifestError, match="quarantineUri is required when onInvalidRow is quarantine"):
        load(p)


def test_in_pod_overrides_use_ips():
    from tfscore.runtime.session import in_pod_overrides

    conf = {"spark.master": "k8s://https://kubernetes.default.svc:443", "spark.driver.host": "j-driver.ns.svc"}
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "POD_IP": "10.244.0.7"}
    assert in_pod_overrides(conf, env) == {"spark.master": "k8s://https://10.96.0.1:443",
                                           "spark.driver.host": "10.244.0.7", "spark.driver.bindAddress": "10.244.0.7"}
    assert in_pod_overrides({"spark.master": "local[2]"}, env) == {}
    assert in_pod_overrides(conf, {"KUBERNETES_SERVICE_HOST": "fd00::1"})["spark.master"] == "k8s://https://[fd00::1]:443"


def test_read_properties_round_trip(tmp_path):
    from tfscore.api import properties
    from tfscore.runtime.session import read_properties

    props = {"spark.app.name": "a b=c", "spark.x": "line1\nline2"}
    path = tmp_path / "spark.properties"
    path.write_text(properties.render(props, header="by the operator"))
    assert read_properties(str(path)) == props
    with pytest.raises(TfscoreError, match="--spark-properties: cannot read"):
        read_properties(str(tmp_path / "missing"))


def test_recover_after_killed_attempts(tmp_path):
    uid = "0b5e2a4c-9d1f-4e3b-8a7c-123456789abc"
    final = tmp_path / "out"
    stale = io.staging_uri(str(final), io.new_run_id(uid), "out")
    other_job = io.staging_uri(str(final), io.new_run_id("ffffffff-0000-0000-0000-000000000000"), "out")
    for d in (stale, other_job):
        _write(Path(d) / "_attempts", [1])
    # An overwrite killed between its two renames: the old output sits aside, the output itself is gone.
    aside = io.staging_uri(str(final), io.new_run_id(uid), "old")
    _write(Path(aside), [7, 8])
    done = io.recover(str(final), uid)
    assert len(done) == 2 and any("restored" in d for d in done)
    assert sorted(pq.read_table(str(final))["id"].to_pylist()) == [7, 8]
    assert not Path(stale).exists() and not Path(aside).exists()
    assert Path(other_job).exists(), "another job's staging is not ours to touch"
    # Killed after the new output was in place: the aside copy is the stale one.
    aside2 = io.staging_uri(str(final), io.new_run_id(uid), "old")
    _write(Path(aside2), [1])
    assert io.recover(str(final), uid) == [f"removed {Path(aside2).name} left by an earlier attempt"]
    assert sorted(pq.read_table(str(final))["id"].to_pylist()) == [7, 8]
    assert io.recover(str(final), "") == []


def test_validate_list_columns_nested_nulls_and_range():
    sig = Signature("s", {"img": TensorInfo("img", "int8", (None, 2, 2))}, {"o": TensorInfo("o", "int8", (None,))})
    b = bind(sig, schema(img=pa.list_(pa.list_(pa.int64()))), {}, [], {}, "src")
    batch = pa.record_batch({"img": pa.array([[[1, 2], [3, 4]], [[1, None], [3, 4]], [[1, 2], [3]], [[1, 2], [3, 999]]],
                                             pa.list_(pa.list_(pa.int64())))})
    invalid, reasons = b.validate(batch)
    assert invalid.tolist() == [False, True, True, True]
    assert reasons[1] == "column 'img' has null elements"
    assert "has 3 values per row" in reasons[2] and "wants 4" in reasons[2]
    assert reasons[3] == "column 'img' has values outside int8's range"
    good = batch.filter(pa.array(~invalid))
    assert b.to_tensors(good)["img"].tolist() == [[[1, 2], [3, 4]]]


@pytest.mark.parametrize("value, expected", [
    ("$(A)/x", "1/x"), ("$(B)", "2-1"), ("$(MISSING)", "$(MISSING)"), ("$$(A)", "$(A)"), ("a$$b", "a$b"),
    ("$(A", "$(A"), ("$x", "$x"), ("end$", "end$"), ("$(HOME_DIR)$(A)", "/h1"),
])
def test_env_expansion_follows_kubernetes(value, expected):
    from tfscore.runtime.session import expand

    known = {"A": "1", "B": "2-1", "HOME_DIR": "/h"}
    assert expand(value, known.get) == expected


def test_local_environment_orders_expands_and_notes_cluster_only_sources():
    from tfscore.api.scoringjob import ScoringJobSpec
    from tfscore.runtime.session import local_environment

    spec = ScoringJobSpec.model_validate({
        "model": {"uri": "/m"}, "input": {"uri": "/in"}, "output": {"uri": "/out"},
        "env": [{"name": "BASE", "value": "s3://b"}, {"name": "URI", "value": "$(BASE)/$(USER)/$(LATER)"},
                {"name": "LATER", "value": "x"}, {"name": "EMPTY"},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "envFrom": [{"secretRef": {"name": "creds"}}]})
    env, notes = local_environment(spec, {"USER": "ana", "TOKEN": "from-shell"})
    # Like a container: only earlier entries (and the environment) expand; a later one is left as written.
    assert env == {"BASE": "s3://b", "URI": "s3://b/ana/$(LATER)", "LATER": "x", "EMPTY": ""}
    assert notes == ["spec.env[4] POD_IP: fieldRef is resolved only by Kubernetes; left unset: export it to set it",
                     "spec.env[5] TOKEN: secretKeyRef is resolved only by Kubernetes; kept from this shell",
                     "spec.envFrom[0] (secretRef creds) is resolved only by Kubernetes; not applied to a local run"]


@pytest.mark.parametrize("entry, words", [
    ({"value": "x"}, "spec.env.0.name"),
    ({"name": "A=B", "value": "x"}, "spec.env.0.name"),
    ({"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
     "an env entry takes value or valueFrom, not both"),
    ({"name": "A", "valeu": "x"}, "spec.env.0.valeu"),
], ids=["no-name", "equals-sign", "both", "typo"])
def test_env_entries_are_validated(tmp_path, entry, words):
    p = tmp_path / "job.yaml"
    p.write_text(yaml.safe_dump({"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringJob", "metadata": {"name": "e"},
                                 "spec": {"model": {"uri": "/m"}, "input": {"uri": "/in"}, "output": {"uri": "/out"},
                                          "env": [entry]}}))
    with pytest.raises(ManifestError, match=re.escape(words)):
        load(p)
