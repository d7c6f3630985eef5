"""Champion/challenger agreement (runtime/agreement.py): Pearson correlation against numpy, merge across tasks, class
disagreement for a probability column and for a [None, k] column, skipped rows, and the wire and summary forms."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from tfscore.api.statistics import Agreement as AgreementModel
from tfscore.runtime.agreement import Agreement


def _lists(m: np.ndarray) -> pa.Array:
    return pa.array(list(m), type=pa.list_(pa.float64()))


def test_correlation_is_numpys_and_merging_tasks_gives_the_whole():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 50_000)
    y = 0.8 * x + rng.normal(0, 0.6, x.size)
    whole = Agreement(["champion", "challenger"], ["score", "score"])
    whole.update(x, y)
    assert whole.correlation == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-12)
    merged = Agreement(["champion", "challenger"], ["score", "score"])
    for part in np.array_split(np.arange(x.size), 9):
        task = Agreement(["champion", "challenger"], ["score", "score"])
        task.update(pa.array(x[part]), pa.array(y[part]))
        merged.merge(Agreement.from_wire(json.loads(json.dumps(task.to_wire()))))
    assert merged.rows == whole.rows == x.size
    assert merged.correlation == pytest.approx(whole.correlation, rel=1e-12)


def test_correlation_is_stable_far_from_zero():
    rng = np.random.default_rng(2)
    x = 1e8 + rng.normal(0, 1, 20_000)
    y = 1e8 + (x - 1e8) * 0.5 + rng.normal(0, 1, x.size)
    acc = Agreement(["a", "b"], ["p", "p"])
    for part in np.array_split(np.arange(x.size), 13):
        acc.update(x[part], y[part])
    centred = np.corrcoef(x - 1e8, y - 1e8)[0, 1]  # numpy on centred data: the reference value
    assert acc.correlation == pytest.approx(centred, rel=1e-6)


def test_binary_classifier_disagreement_thresholds_at_one_half():
    champion = pa.array([0.1, 0.6, 0.5, 0.49, 0.9, None, 0.2], type=pa.float32())
    challenger = pa.array([0.2, 0.4, 0.51, 0.5, 0.95, 0.3, float("nan")], type=pa.float32())
    acc = Agreement(["v1", "v2"], ["p", "p"], classifier=True)
    acc.update(champion, challenger)
    assert (acc.rows, acc.skipped, acc.differ) == (5, 2, 2)  # 0.6↔0.4 and 0.49↔0.5 differ; 0.5 is class 1
    summary = acc.summary()
    assert summary["classDisagreement"] == pytest.approx(2 / 5)
    assert AgreementModel.model_validate(summary).to_wire() == summary


def test_multiclass_disagreement_is_argmax_and_correlation_pairs_every_element():
    rng = np.random.default_rng(3)
    a = rng.dirichlet(np.ones(4), 2000)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, None)
    acc = Agreement(["v1", "v2"], ["probs", "probs"], classifier=True)
    acc.update(_lists(a), _lists(b))
    assert acc.differ == np.count_nonzero(a.argmax(1) != b.argmax(1))
    assert acc.correlation == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], rel=1e-12)


def test_null_rows_of_list_columns_keep_their_places():
    a = pa.array([[0.9, 0.1], None, [0.2, 0.8], [0.6, 0.4]], type=pa.list_(pa.float32()))
    b = pa.array([[0.8, 0.2], [0.1, 0.9], [0.7, 0.3], [0.3, 0.7]], type=pa.list_(pa.float32()))
    acc = Agreement(["v1", "v2"], ["p", "p"], classifier=True)
    acc.update(a, b)
    assert (acc.rows, acc.skipped, acc.differ) == (3, 1, 2)


def test_boolean_and_integer_columns_with_nulls():
    acc = Agreement(["a", "b"], ["p", "p"], classifier=True)
    acc.update(pa.array([True, False, None, True]), pa.array([1, 1, 0, None], type=pa.int64()))
    assert (acc.rows, acc.skipped, acc.differ) == (2, 2, 1)


def test_constant_predictions_have_no_correlation():
    acc = Agreement(["a", "b"], ["p", "p"])
    acc.update(np.ones(10), np.arange(10.0))
    summary = acc.summary()
    assert "correlation" not in summary and "classDisagreement" not in summary
    assert AgreementModel.model_validate(summary).to_wire() == summary


@pytest.mark.parametrize("x, y, needle", [
    (np.ones(3), np.ones(4), "do not align"),
    (pa.array([[1.0, 2.0], [1.0]]), pa.array([[1.0, 2.0], [1.0, 2.0]]), "'left' holds 1..2 values per row"),
])
def test_misaligned_columns_are_named(x, y, needle):
    with pytest.raises(ValueError, match=needle):
        Agreement(["a", "b"], ["left", "right"]).update(x, y)


def test_merge_and_wire_checks():
    with pytest.raises(ValueError, match="cannot merge"):
        Agreement(["a", "b"], ["p", "p"]).merge(Agreement(["a", "c"], ["p", "p"]))
    with pytest.raises(ValueError, match="missing 'sxy'"):
        wire = Agreement(["a", "b"], ["p", "p"]).to_wire()
        del wire["sxy"]
        Agreement.from_wire(wire)
    with pytest.raises(ValueError, match="two model names"):
        Agreement(["a"], ["p", "p"])
