"""Drift from two sketches (runtime/drift.py): PSI against the normal-theory value, KS against the exact two-sample
statistic (computed here with numpy), the epsilon for empty bins, and the Drift wire form."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from tfscore.api.statistics import Drift
from tfscore.runtime.drift import EPSILON, THRESHOLDS, drift, ks, ks_tolerance, psi
from tfscore.runtime.stats import ColumnSketch

N = 100_000


def _sketch(values) -> ColumnSketch:
    s = ColumnSketch()
    s.update(values)
    return s


def _psi_theory(shift: float, scale: float = 1.0, bins: int = 10) -> float:
    """PSI of N(shift, scale) against N(0, 1) over N(0, 1)'s exact deciles."""
    ref, cur = NormalDist(), NormalDist(shift, scale)
    edges = [ref.inv_cdf(i / bins) for i in range(1, bins)]
    c = np.diff([0.0] + [cur.cdf(e) for e in edges] + [1.0])
    r = np.full(bins, 1 / bins)
    return float(np.sum((c - r) * np.log(c / r)))


def _ks_exact(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: max |F_a - F_b| over every sample point (scipy's ks_2samp D)."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, points, "right") / a.size
                               - np.searchsorted(b, points, "right") / b.size)))


def test_identical_distributions_show_no_drift():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, N)
    same = _sketch(x)
    assert psi(same, _sketch(x)) == pytest.approx(0.0, abs=1e-12)
    assert ks(same, _sketch(x)) == 0.0
    other_sample = _sketch(rng.normal(0, 1, N))  # the same distribution, another sample: sampling noise only
    assert psi(same, other_sample) < 0.002
    assert ks(same, other_sample) < 0.01


@pytest.mark.parametrize("shift, scale", [(0.1, 1.0), (0.25, 1.0), (0.5, 1.0), (1.0, 1.0), (0.0, 1.5)])
def test_psi_of_a_shifted_normal_is_the_theoretical_value(shift, scale):
    rng = np.random.default_rng(2)
    value = psi(_sketch(rng.normal(0, 1, N)), _sketch(rng.normal(shift, scale, N)))
    theory = _psi_theory(shift, scale)
    assert value == pytest.approx(theory, rel=0.1, abs=0.003), (value, theory)


def test_psi_reading_follows_the_usual_thresholds():
    rng = np.random.default_rng(3)
    ref = _sketch(rng.normal(0, 1, N))
    assert psi(ref, _sketch(rng.normal(0.1, 1, N))) < 0.1  # stable
    assert 0.1 < psi(ref, _sketch(rng.normal(0.4, 1, N))) < 0.25  # moderate
    assert psi(ref, _sketch(rng.normal(1.0, 1, N))) > THRESHOLDS["psi"]  # major


CASES = {
    "normal shifted": lambda r: (r.normal(0, 1, N), r.normal(0.2, 1, N)),
    "normal wider": lambda r: (r.normal(0, 1, N), r.normal(0, 1.2, N)),
    "uniform skewed": lambda r: (r.random(N), r.random(N) ** 1.2),
    "lognormal": lambda r: (r.lognormal(0, 1, N), r.lognormal(0.1, 1, N)),
    "relu (zeros)": lambda r: (np.maximum(r.normal(0, 1, N), 0), np.maximum(r.normal(0.1, 1, N), 0)),
    "same": lambda r: (r.normal(5, 2, N), r.normal(5, 2, N)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sketch_ks_is_the_exact_two_sample_ks_within_the_stated_tolerance(case):
    a, b = CASES[case](np.random.default_rng(4))
    sa, sb = _sketch(a), _sketch(b)
    exact, estimate, tolerance = _ks_exact(a, b), ks(sa, sb), ks_tolerance(sa, sb)
    assert exact - tolerance - 1e-12 <= estimate <= exact + 1e-12, (estimate, exact, tolerance)
    assert tolerance < 0.02  # data near zero relative to its spread: fine-grained buckets


def test_constant_reference_and_empty_bins_use_epsilon():
    ref = _sketch(np.full(1000, 2.0))
    assert psi(ref, _sketch(np.full(500, 2.0))) == 0.0  # one edge: two bins, the upper one empty in both
    moved = psi(ref, _sketch(np.full(500, 3.0)))  # all of the mass moved into the bin the reference left empty
    assert moved == pytest.approx(2 * (1 - EPSILON) * np.log(1 / EPSILON), rel=1e-9)
    assert ks(ref, _sketch(np.full(500, 3.0))) == 1.0


def test_drift_wire_form_validates_and_applies_thresholds():
    rng = np.random.default_rng(5)
    ref, cur = _sketch(rng.normal(0, 1, N)), _sketch(rng.normal(0.5, 1, N))
    d = drift(ref, cur, reference_run="nightly-20250601")
    assert d["metric"] == "psi" and d["threshold"] == 0.25 and d["reference"] == "nightly-20250601"
    assert Drift.model_validate(d).to_wire() == d
    assert drift(ref, cur, "r", metric="ks", threshold=0.15)["exceeded"] is True  # KS here is ~0.2
    assert drift(ref, cur, "r", metric="psi", threshold=0.5)["exceeded"] is False


@pytest.mark.parametrize("call, needle", [
    (lambda a, e: psi(a, e), "current run has no finite prediction values"),
    (lambda a, e: ks(e, a), "reference run has no finite"),
    (lambda a, e: ks(a, _sketch_alpha(0.05)), "different accuracy"),
    (lambda a, e: psi(a, a, bins=1), "bins must be in"),
    (lambda a, e: drift(a, a, "r", metric="wasserstein"), "'wasserstein' is not one of psi, ks"),
    (lambda a, e: drift(a, a, "r", threshold=-1), "threshold must be a non-negative number"),
])
def test_bad_comparisons_are_refused(call, needle):
    with pytest.raises(ValueError, match=needle):
        call(_sketch(np.arange(1.0, 10.0)), _sketch(np.array([np.nan])))


def _sketch_alpha(alpha: float) -> ColumnSketch:
    s = ColumnSketch(alpha=alpha)
    s.update(np.arange(1.0, 10.0))
    return s
