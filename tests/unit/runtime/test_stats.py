"""Mergeable column sketches (runtime/stats.py): exact counters, stable moments, quantiles within the relative-accuracy
guarantee, merge of splits == sketch of the whole, the JSON wire form, and the summary's API model."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pyarrow as pa
import pytest

from tfscore.api.statistics import QUANTILE_KEYS, ColumnStatistics
from tfscore.runtime.stats import QUANTILES, ColumnSketch, mantissa_bits

QS = list(QUANTILES.values())


def _data(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return {
        "uniform": lambda: rng.random(n),
        "normal": lambda: rng.normal(0, 1, n),
        "lognormal": lambda: rng.lognormal(0, 2, n),
        "bimodal": lambda: np.concatenate([rng.normal(-5, 1, n // 2), rng.normal(40, 0.5, n - n // 2)]),
        "constant": lambda: np.full(n, 3.25),
        "relu": lambda: np.maximum(rng.normal(0, 1, n), 0.0),  # many exact zeros beside positive values
        "negative": lambda: -rng.lognormal(1, 1, n),
        "float32": lambda: rng.normal(10, 3, n).astype(np.float32),
        "int": lambda: rng.integers(-1000, 1000, n),
    }[kind]()


KINDS = ["uniform", "normal", "lognormal", "bimodal", "constant", "relu", "negative", "float32", "int"]


def _sketch(values, **kw) -> ColumnSketch:
    s = ColumnSketch(**kw)
    s.update(values)
    return s


def _buckets(s: ColumnSketch) -> dict:
    wire = s.to_wire()
    return {k: wire.get(k) for k in ("pos", "neg", "zeros", "count")}


@pytest.mark.parametrize("kind", KINDS)
def test_quantiles_within_the_relative_accuracy_of_numpy(kind):
    x = _data(kind, 50_000, seed=1)
    s = _sketch(x)
    exact = np.quantile(x.astype(np.float64), QS, method="lower")  # the rank the sketch reports: floor(q·(n-1))
    estimate = np.array(list(s.quantiles().values()))
    assert list(s.quantiles()) == list(QUANTILE_KEYS)
    bound = s.relative_accuracy * np.abs(exact) * (1 + 1e-12)
    assert np.all(np.abs(estimate - exact) <= bound), (kind, estimate, exact)
    assert s.relative_accuracy == pytest.approx(1 / 129) and s.relative_accuracy <= 0.01


@pytest.mark.parametrize("kind", KINDS)
def test_exact_counters_and_stable_moments(kind):
    x = _data(kind, 20_000, seed=2).astype(np.float64)
    s = _sketch(x)
    assert (s.count, s.nulls, s.nans, s.infinities) == (x.size, 0, 0, 0)
    assert (s.min, s.max) == (x.min(), x.max())
    assert s.mean == pytest.approx(x.mean(), rel=1e-12, abs=1e-12)
    assert s.stddev == pytest.approx(x.std(), rel=1e-9, abs=1e-12)
    assert s.zeros == np.count_nonzero(x == 0)


def test_moments_are_stable_far_from_zero():
    """Σx² - n·x̄² would lose every digit here; Chan's merge of per-batch centred sums keeps them."""
    x = 1e9 + np.random.default_rng(3).normal(0, 1, 100_000)
    s = ColumnSketch()
    for part in np.array_split(x, 37):
        s.update(part)
    assert s.mean == pytest.approx(x.mean(), rel=1e-15)
    assert s.stddev == pytest.approx(x.std(), rel=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merging_the_sketches_of_splits_gives_the_sketch_of_the_whole(kind, seed):
    x = _data(kind, 30_000, seed)
    rng = np.random.default_rng(100 + seed)
    cuts = np.sort(rng.integers(0, x.size, rng.integers(1, 12)))  # random parts, empty ones included
    parts = np.split(x, cuts)
    merged = ColumnSketch()
    for part in parts[::-1]:  # merge order does not matter either
        merged.merge(_sketch(part))
    whole = _sketch(x)
    assert _buckets(merged) == _buckets(whole)  # identical buckets: identical quantiles
    assert merged.quantiles() == whole.quantiles()
    assert (merged.min, merged.max, merged.nulls) == (whole.min, whole.max, whole.nulls)
    assert merged.mean == pytest.approx(whole.mean, rel=1e-12, abs=1e-12)
    assert merged.stddev == pytest.approx(whole.stddev, rel=1e-9, abs=1e-12)


def test_arrow_nulls_nans_and_infinities_are_counted_apart():
    arr = pa.array([1.0, None, math.nan, math.inf, -math.inf, 2.0, None, 0.0], type=pa.float32())
    s = _sketch(pa.chunked_array([arr.slice(0, 3), arr.slice(3)]))
    assert (s.count, s.nulls, s.nans, s.pos_inf, s.neg_inf, s.zeros) == (3, 2, 1, 1, 1, 1)
    summary = s.summary()
    assert (summary["min"], summary["max"], summary["mean"]) == (0.0, 2.0, 1.0)
    assert summary["infinities"] == 2 and abs(summary["quantiles"]["p50"] - 1.0) <= s.relative_accuracy * (1 + 1e-12)


@pytest.mark.parametrize("values", [
    pa.array([None, None, None], type=pa.float64()),
    np.array([math.nan] * 5),
    np.array([math.inf, -math.inf]),
    np.array([], dtype=np.float32),
])
def test_columns_without_a_finite_value_have_counts_and_nothing_else(values):
    s = _sketch(values)
    summary = s.summary()
    assert summary["count"] == 0 and summary["quantiles"] == {}
    assert not {"min", "max", "mean", "stddev"} & set(summary)
    assert summary["nulls"] + summary["nans"] + summary["infinities"] == len(values)
    assert ColumnStatistics.model_validate(summary).to_wire() == summary
    assert ColumnSketch.from_wire(json.loads(json.dumps(s.to_wire()))).summary() == summary


def test_integer_boolean_and_list_arrays():
    assert _sketch(pa.array([1, 2, None, 4], type=pa.int64())).summary()["max"] == 4.0
    b = _sketch(pa.array([True, False, True, None]))
    assert (b.count, b.nulls, b.mean) == (3, 1, pytest.approx(2 / 3))
    lists = pa.array([[1.0, 2.0], None, [3.0, None]], type=pa.list_(pa.float64()))
    s = _sketch(lists)  # flattened: a null row and a null element are one null each
    assert (s.count, s.nulls, s.max) == (3, 2, 3.0)
    with pytest.raises(ValueError, match="type string"):
        _sketch(pa.array(["a"]))
    with pytest.raises(ValueError, match="dtype <U1"):
        _sketch(np.array(["a"]))


def test_zero_and_subnormal_values_count_as_zero():
    s = _sketch(np.array([0.0, -0.0, 1e-310, -1e-310, 5.0]))
    assert (s.zeros, s.count, s.min, s.max) == (4, 5, -1e-310, 5.0)  # min/max stay exact
    assert s.quantile(0.5) == 0.0 and s.quantile(1.0) == pytest.approx(5.0, rel=s.relative_accuracy)


def test_bucket_count_is_bounded_and_the_lowest_buckets_fold():
    x = np.geomspace(1e-30, 1e30, 20_000)  # 200 octaves: 12,800 buckets at full resolution
    s = _sketch(x, max_buckets=256)
    wire = s.to_wire()
    assert len(wire["pos"]["counts"]) == 256 and sum(wire["pos"]["counts"]) == x.size
    upper, _, _ = s.cells()
    boundary = upper[0]  # everything below the lowest kept bucket's upper bound is folded into it
    exact = np.quantile(x, QS, method="lower")
    estimate = np.array(list(s.quantiles().values()))
    above = exact >= boundary
    assert np.all(np.abs(estimate - exact)[above] <= s.relative_accuracy * exact[above] * (1 + 1e-12))
    assert np.all(np.abs(estimate - exact)[~above] <= boundary)
    merged = ColumnSketch(max_buckets=256)
    for part in np.array_split(x, 7):
        merged.merge(_sketch(part, max_buckets=256))
    assert _buckets(merged) == _buckets(s)  # folding depends only on the highest index: still exact


def test_wire_round_trip_is_exact_and_compact():
    s = _sketch(np.concatenate([_data("relu", 10_000, 4), -_data("lognormal", 1000, 5), [math.nan, math.inf]]))
    text = json.dumps(s.to_wire())
    back = ColumnSketch.from_wire(json.loads(text))
    assert back.to_wire() == s.to_wire() and back.summary() == s.summary()
    assert back.mean == s.mean and back.m2 == s.m2  # JSON floats round-trip exactly
    assert len(text) < 8000


@pytest.mark.parametrize("mutate, needle", [
    (lambda w: w.pop("count"), "missing 'count'"),
    (lambda w: w.update(v=9), "version 9 is not supported"),
    (lambda w: w.update(nulls=-1), "nulls is negative"),
    (lambda w: w.update(count=w["count"] + 1), "bucket counts add up to"),
    (lambda w: w["pos"].update(counts=[1, "x"]), "sketch.pos"),
    (lambda w: w.update(bits=40), "mantissa bits"),
])
def test_malformed_wire_forms_are_refused_with_the_key(mutate, needle):
    wire = _sketch(np.arange(1.0, 100.0)).to_wire()
    mutate(wire)
    with pytest.raises(ValueError, match=needle):
        ColumnSketch.from_wire(wire)


def test_sketches_of_different_accuracy_do_not_merge():
    with pytest.raises(ValueError, match="buckets per octave"):
        ColumnSketch(alpha=0.01).merge(ColumnSketch(alpha=0.05))
    assert [mantissa_bits(a) for a in (0.5, 0.05, 0.02, 0.01, 0.001)] == [0, 4, 5, 6, 9]
    with pytest.raises(ValueError, match="alpha"):
        ColumnSketch(alpha=0)


@pytest.mark.parametrize("kind", ["uniform", "lognormal", "relu", "bimodal"])
def test_summary_validates_against_the_api_model(kind):
    summary = _sketch(_data(kind, 5000, 6)).summary()
    model = ColumnStatistics.model_validate(summary)
    assert model.to_wire() == summary
    assert set(model.quantiles) == set(QUANTILE_KEYS)


def test_cost_per_million_float32_values(capsys):
    """Printed, never asserted (unit tests time nothing): CPU time of `update` per 1M float32 values, as one batch and
    as 4096-row batches (the default batchSize), with np.log of the same values as a yardstick."""
    n = 1_000_000
    rng = np.random.default_rng(7)
    columns = {"uniform": rng.random(n, dtype=np.float32), "lognormal": rng.lognormal(0, 1, n).astype(np.float32),
               "normal (both signs)": rng.normal(0, 1, n).astype(np.float32)}

    def best(fn, reps=3):
        times = []
        for _ in range(reps):
            t = time.thread_time()
            fn()
            times.append(time.thread_time() - t)
        return min(times) * 1e3

    yardstick = best(lambda: np.log(columns["uniform"].astype(np.float64)))
    lines = [f"np.log of 1M float64 values: {yardstick:.1f} ms"]
    for name, x in columns.items():
        arr = pa.array(x)
        whole = best(lambda arr=arr: ColumnSketch().update(arr))

        def batched(arr=arr):
            s = ColumnSketch()
            for i in range(0, n, 4096):
                s.update(arr.slice(i, 4096))

        lines.append(f"{name}: {whole:.1f} ms per 1M (one batch), {best(batched):.1f} ms (4096-row batches), "
                     f"wire {len(json.dumps(_sketch(arr).to_wire(), separators=(',', ':')))} bytes")
    with capsys.disabled():
        print("\nColumnSketch.update, CPU time:\n  " + "\n  ".join(lines))
