"""A task's prediction sketches (runtime/batchstats.py): which sketches a column gets, per-element and flattened list
columns, buffering, merge across tasks, the wire form and its size for 1M rows."""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pytest

from tfscore.api.statistics import PredictionStatistics
from tfscore.runtime.batchstats import MAX_ELEMENTS, BatchStats, element_width, sketchable
from tfscore.runtime.stats import ColumnSketch


def _batch(n: int, seed: int, k: int = 3) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), n).astype(np.float32)
    score = rng.random(n).astype(np.float32)
    score_arr = pa.array(score, mask=rng.random(n) < 0.01)  # a few nulls
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), pa.array(probs.ravel()))
    embedding = pa.ListArray.from_arrays(pa.array(np.arange(0, n * 32 + 1, 32, dtype=np.int32)),
                                         pa.array(rng.normal(size=n * 32).astype(np.float32)))
    return pa.record_batch({"id": pa.array(np.arange(n)), "score": score_arr, "probs": lists, "emb": embedding,
                            "label": pa.array(["x"] * n)})


COLUMNS = {"score": None, "probs": 3, "emb": None}


@pytest.mark.parametrize("shape, width", [((), None), ((1,), None), ((3,), 3), ((MAX_ELEMENTS,), MAX_ELEMENTS),
                                          ((MAX_ELEMENTS + 1,), None), ((None,), None), ((2, 3), None)])
def test_element_width_comes_from_the_static_shape(shape, width):
    assert element_width(shape) == width


def test_sketchable_types():
    assert sketchable(pa.float32()) and sketchable(pa.list_(pa.int64())) and sketchable(pa.bool_())
    assert not sketchable(pa.string()) and not sketchable(pa.list_(pa.string()))


def test_element_sketches_match_sketches_of_the_element_columns():
    batch = _batch(5000, seed=1)
    stats = BatchStats(COLUMNS)
    stats.update(batch)
    probs = np.stack(batch.column("probs").to_numpy(zero_copy_only=False))
    assert set(stats.sketches) == {"score", "probs[0]", "probs[1]", "probs[2]", "emb"}
    for j in range(3):
        alone = ColumnSketch()
        alone.update(probs[:, j])
        assert stats.sketches[f"probs[{j}]"].to_wire() == alone.to_wire()
    assert stats.sketches["emb"].count == 5000 * 32  # wider than MAX_ELEMENTS: flattened
    assert stats.sketches["score"].nulls == batch.column("score").null_count


def test_null_rows_count_once_per_element_sketch():
    lists = pa.array([[0.1, 0.9], None, [0.4, 0.6]], type=pa.list_(pa.float32()))
    stats = BatchStats({"p": 2})
    stats.update(pa.record_batch({"p": lists}))
    assert [(s.count, s.nulls) for s in stats.sketches.values()] == [(2, 1), (2, 1)]


def test_buffered_small_batches_equal_one_big_batch():
    small = BatchStats(COLUMNS)
    for seed in range(20):
        small.update(_batch(4096, seed))
    big = BatchStats(COLUMNS)
    big.update(pa.Table.from_batches([_batch(4096, seed) for seed in range(20)]))
    _assert_same(small, big)


def _assert_same(a: BatchStats, b: BatchStats) -> None:
    """Identical counters and buckets; moments equal up to the rounding of a different batching."""
    assert set(a.sketches) == set(b.sketches)
    for key, x in a.sketches.items():
        wx, wy = x.to_wire(), b.sketches[key].to_wire()
        for moment in ("mean", "m2"):
            assert wx.pop(moment, 0.0) == pytest.approx(wy.pop(moment, 0.0), rel=1e-9, abs=1e-12), (key, moment)
        assert wx == wy, key


def test_merge_across_tasks_is_the_whole():
    tasks = []
    for seed in range(4):
        t = BatchStats(COLUMNS)
        t.update(_batch(3000, seed))
        tasks.append(t)
    empty = BatchStats(COLUMNS)  # a task that scored no rows still reports every column
    assert empty.summary()["probs[1]"]["count"] == 0
    merged = BatchStats(COLUMNS)
    for t in [empty, *tasks]:
        merged.merge(BatchStats.from_wire(json.loads(json.dumps(t.to_wire()))))
    whole = BatchStats(COLUMNS)
    whole.update(pa.Table.from_batches([_batch(3000, seed) for seed in range(4)]))
    _assert_same(merged, whole)


def test_summary_validates_against_the_api_model():
    stats = BatchStats(COLUMNS)
    stats.update(_batch(2000, seed=5))
    model = PredictionStatistics.model_validate({"columns": stats.summary()})
    assert model.to_wire()["columns"] == stats.summary()


@pytest.mark.parametrize("columns, batch, needle", [
    ({"nope": None}, pa.record_batch({"a": [1.0]}), "'nope' is not in the output batch"),
    ({"a": 2}, pa.record_batch({"a": [1.0]}), "'a' is double, not a list of 2"),
    ({"a": None}, pa.record_batch({"a": ["x"]}), "'a' is string"),
    ({"a": 2}, pa.record_batch({"a": pa.array([[1.0, 2.0], [1.0]])}), "rows hold 1..2 values, expected 2"),
])
def test_bad_columns_are_named(columns, batch, needle):
    stats = BatchStats(columns)
    with pytest.raises(ValueError, match=needle):
        stats.update(batch)
        stats.flush()


def test_declarations_must_agree():
    with pytest.raises(ValueError, match="element width 40"):
        BatchStats({"a": 40})
    with pytest.raises(ValueError, match="element width 3 in one task and None"):
        BatchStats({"a": 3}).merge(BatchStats({"a": None}))
    with pytest.raises(ValueError, match="columns.a: want null or an element count"):
        BatchStats.from_wire({"v": 1, "columns": {"a": "3"}, "sketches": {}})
    with pytest.raises(ValueError, match="do not match columns"):
        BatchStats.from_wire({"v": 1, "columns": {"a": None}, "sketches": {}})


def test_cost_and_wire_size_for_a_million_rows(capsys):
    """Printed, not asserted beyond a loose size bound: the CPU time BatchStats adds per 1M rows arriving as 4096-row
    batches (the default batchSize), and what one task's statistics add to its report."""
    rng = np.random.default_rng(9)
    lines = []
    for name, values in {"uniform": rng.random(1_000_000), "lognormal": rng.lognormal(0, 1, 1_000_000),
                         "normal": rng.normal(0, 1, 1_000_000)}.items():
        batches = pa.Table.from_pydict({"p": pa.array(values.astype(np.float32))}).to_batches(max_chunksize=4096)
        best = float("inf")
        for _ in range(3):
            stats = BatchStats({"p": None})
            started = time.thread_time()
            for b in batches:
                stats.update(b)
            stats.flush()
            best = min(best, time.thread_time() - started)
        size = len(json.dumps(stats.to_wire(), separators=(",", ":")))
        lines.append(f"{name}: {best * 1e3:.1f} ms CPU per 1M rows in 4096-row batches, wire {size} bytes")
        assert size < 20_000
    with capsys.disabled():
        print("\nBatchStats, one float32 column:\n  " + "\n  ".join(lines))
