"""Several models in one pass, and Keras 3 archives: two and three models (SavedModels and a `.keras` archive, with
different signatures and column mappings) over one scan of the input; each model's predictions equal direct calls; a bad
model fails before any work naming it; a row invalid for one model is quarantined once; the result carries every model's
version and fingerprint, the prediction statistics and the champion/challenger agreement."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.runtime import FEATURES, job_doc
from tfscore import testing
from tfscore.api.manifest import parse
from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.job import RunOptions, run_job

ROWS = 4000


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("keras") / "risk"
    return testing.keras_mlp(root, features=8, version=3, seed=4)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    cols = testing.tabular_columns(ROWS, 8, seed=21)
    cols["extra"] = np.linspace(-1, 1, ROWS)
    path = testing.write_parquet(tmp_path_factory.mktemp("in") / "in", cols, row_group=1000)
    return path, cols


def feats(cols, idx=slice(None)):
    return np.stack([cols[c] for c in FEATURES], 1).astype(np.float32)[idx]


def models_doc(models, keras_model, inp, out, **spec):
    return job_doc(None, inp, out, input={"columns": {"features": FEATURES}}, output={"passthrough": ["id"]},
                   models=[{"name": "champion", "uri": str(models["mlp"]), "version": 1},
                           {"name": "challenger", "uri": keras_model.rsplit("/", 2)[0],
                            "columns": {"feats": FEATURES}},
                           {"name": "shaped", "uri": str(models["two"]), "columns": {"dense": FEATURES[:3]},
                            "predictions": {"score": "shaped_score"}}], **spec)


def test_three_models_in_one_pass(run, models, keras_model, data, tmp_path):
    inp, cols = data
    doc = models_doc(models, keras_model, inp, tmp_path / "out")
    result = run(doc)
    assert result.rows_in == result.rows_out == ROWS
    assert [m.name for m in result.models] == ["champion", "challenger", "shaped"]
    assert [m.version for m in result.models] == ["1", "3", "1"] and all(m.fingerprint for m in result.models)
    out = pq.read_table(str(tmp_path / "out")).sort_by("id")
    assert out.column_names == ["id", "champion_probability", "challenger_logit", "challenger_risk", "shaped_score"]
    champ = testing.call_signature(str(models["mlp"] / "1"), {"features": feats(cols)})["probability"][:, 0]
    keras_out = testing.call_keras(keras_model, {"feats": feats(cols)})
    shaped = testing.call_signature(str(models["two"] / "1"), {"dense": feats(cols)[:, :3], "extra": cols["extra"]})
    np.testing.assert_allclose(out["champion_probability"].to_numpy(), champ, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["challenger_risk"].to_numpy(), keras_out["risk"][:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["shaped_score"].to_numpy(), shaped["score"], rtol=1e-5, atol=1e-5)
    stats = result.statistics
    assert set(stats.columns) == {"champion_probability", "challenger_logit", "challenger_risk", "shaped_score"}
    assert stats.columns["champion_probability"].count == ROWS
    pair = stats.agreement[0]
    assert pair.models == ["champion", "challenger"] and pair.columns == ["champion_probability", "challenger_logit"] \
        or pair.columns == ["champion_probability", "challenger_risk"]
    assert pair.rows == ROWS and pair.correlation is not None


def test_a_keras_archive_alone(run, keras_model, data, tmp_path):
    inp, cols = data
    doc = job_doc(keras_model, inp, tmp_path / "out", input={"columns": {"feats": FEATURES}},
                  output={"passthrough": ["id"], "predictions": {"risk": "p"}})
    result = run(doc)
    out = pq.read_table(str(tmp_path / "out")).sort_by("id")
    want = testing.call_keras(keras_model, {"feats": feats(cols)})["risk"][:, 0]
    np.testing.assert_allclose(out["p"].to_numpy(), want, rtol=1e-5, atol=1e-6)
    assert result.model.signature == "keras" and result.model.fingerprint.startswith("sha256:")


def test_a_bad_second_model_fails_before_any_work_naming_it(run, models, keras_model, data, tmp_path):
    inp, _ = data
    doc = models_doc(models, keras_model, inp, tmp_path / "out")
    doc["spec"]["models"][1] = {"name": "challenger", "uri": str(models["mlp"]), "signature": "score"}
    with pytest.raises(TfscoreError, match=r"^models\[1\] \(challenger\): signature: 'score' not found"):
        run(doc)
    doc["spec"]["models"][1] = {"name": "challenger", "uri": str(models["mlp"]), "columns": {"features": "nope"}}
    with pytest.raises(TfscoreError, match=r"^models\[1\] \(challenger\): input.columns.features: column 'nope'"):
        run(doc)
    assert not (tmp_path / "out").exists()


def test_a_row_invalid_for_one_model_is_quarantined_once(run, models, keras_model, tmp_path):
    cols = testing.tabular_columns(1000, 8, seed=2)
    table = pa.table({**cols, "extra": pa.array([None if i in (7, 70) else 0.5 for i in range(1000)], pa.float64())})
    inp = tmp_path / "in"
    inp.mkdir()
    pq.write_table(table, inp / "part-0.parquet")
    doc = models_doc(models, keras_model, inp, tmp_path / "out", onInvalidRow="quarantine",
                     quarantineUri=str(tmp_path / "q"))
    result = run(doc)
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (1000, 998, 2)
    q = pq.read_table(str(tmp_path / "q"))
    assert sorted(q["id"].to_pylist()) == [7, 70]
    assert all(r.startswith("models[2] (shaped): column 'extra' is null") for r in q["_tfscore_reason"].to_pylist())


def test_a_keras_exported_savedmodel_scores_on_both_engines_with_workers_that_never_import_keras(run, data, tmp_path):
    """`model.export()` (Keras 3's SavedModel for serving) scored by Spark's Python workers and by the local engine's:
    both equal direct calls. Workers import TensorFlow without the Keras import TensorFlow makes eagerly
    (model.import_tensorflow), and in a fresh process Keras still loads on first use."""
    inp, cols = data
    root = tmp_path / "exported"
    version = testing.keras_export(root, seed=4)
    want = testing.call_signature(version, {"feats": feats(cols)})["risk"][:, 0]
    for engine in ("spark", "local"):
        out = tmp_path / f"out-{engine}"
        doc = job_doc(str(root), inp, out, input={"columns": {"feats": FEATURES}},
                      output={"passthrough": ["id"], "predictions": {"risk": "p"}})
        result = run(doc) if engine == "spark" else run_job(parse(doc, "test"), RunOptions(master="local[2]",
                                                                                             engine="local"))
        got = pq.read_table(str(out)).sort_by("id")["p"].to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=engine)
        assert result.rows_out == ROWS
    probe = ("import sys\nfrom tfscore.runtime import model\ntf = model.import_tensorflow()\n"
             "print(sorted(m for m in ('keras', 'pandas') if m in sys.modules))\n"
             "import keras\nprint(keras.saving.load_model(sys.argv[1], compile=False).name, tf.keras.layers.Dense)\n")
    proc = subprocess.run([sys.executable, "-c", probe, f"{root}-archive/1/model.keras"], capture_output=True,
                          text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "[]" and "Dense" in lines[1], proc.stdout
