"""Drift between two runs' prediction distributions, from their sketches alone (runtime/stats.py): the reference sketch
is the previous successful run's, read back from its `_tfscore.json`; no data is read twice.

Both metrics look at the finite values only (nulls, NaNs and infinities have their own counts in ColumnStatistics).

- PSI, the default: the Population Stability Index over the reference's deciles, Σ (c_i - r_i)·ln(c_i / r_i) with r_i,
  c_i the shares of the reference and the current run in bin i. The usual reading: < 0.1 stable, 0.1-0.25 moderate
  shift, > 0.25 major shift (the default threshold). It weighs a change anywhere in the distribution by its mass.
- KS: the Kolmogorov-Smirnov statistic, max |F_ref(x) - F_cur(x)|, in [0, 1]. With millions of rows every difference
  is "significant", so the default threshold 0.1 is a practical effect size, not a significance test.

How the sketches stand in for the data: both sketches share one grid of bucket boundaries (exact binary fractions, see
stats.py), and every value of a bucket lies on one side of every boundary, so each CDF is *exact* at the boundaries.
- psi(): the decile edges are the upper boundaries of the reference buckets holding its 10%, 20%, ... 90% quantiles
  (duplicates dropped: a constant or very discrete reference has fewer bins), so both runs' bin shares are exact counts.
  An empty bin would make ln(c/r) infinite: a share of 0 is replaced by EPSILON = 1e-4 in both distributions, the
  common practice (an empty bin then contributes about share·ln(share/1e-4): 0.69 for a share of 0.1).
- ks(): both CDFs evaluated on the union of the two sketches' boundaries. The result is never above the exact
  two-sample statistic and at most the largest share one bucket holds in either run below it (`ks_tolerance`): ~0.004
  for a unit normal, 1/128 for uniform(0, 1) at the default accuracy. Data far from zero relative to its spread
  (N(1000, 1), say) sits in a few buckets only, and both metrics lose their resolution: the bound says by how much.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tfscore.api.statistics import DEFAULT_DRIFT_THRESHOLDS, DriftMetric
from tfscore.runtime.stats import ColumnSketch

DEFAULT_METRIC = DriftMetric.psi.value
THRESHOLDS = DEFAULT_DRIFT_THRESHOLDS  # `exceeded` when value > threshold; a schedule's drift policy may set its own
EPSILON = 1e-4


def _cdf(reference: ColumnSketch, current: ColumnSketch) -> tuple[tuple[np.ndarray, np.ndarray],
                                                                  tuple[np.ndarray, np.ndarray]]:
    """(boundaries, cumulative shares) of each sketch; refuses sketches that cannot be compared."""
    if reference.bits != current.bits:
        raise ValueError(f"drift: the reference sketch has {1 << reference.bits} buckets per octave, this run's "
                         f"{1 << current.bits}; sketches of different accuracy cannot be compared")
    out = []
    for what, sketch in (("reference", reference), ("current", current)):
        if not sketch.count:
            raise ValueError(f"drift: the {what} run has no finite prediction values to compare")
        upper, _, counts = sketch.cells()
        out.append((upper, np.cumsum(counts) / sketch.count))
    return out[0], out[1]


def _share_at_or_below(cdf: tuple[np.ndarray, np.ndarray], points: np.ndarray) -> np.ndarray:
    """F at each point, for points on the shared boundary grid: the share of the buckets whose boundary is <= it."""
    upper, cum = cdf
    at = np.searchsorted(upper, points, side="right") - 1
    return np.where(at >= 0, cum[np.maximum(at, 0)], 0.0)


def psi(reference: ColumnSketch, current: ColumnSketch, bins: int = 10) -> float:
    """Population Stability Index of `current` against `reference`, over the reference's `bins`-quantiles."""
    if not 2 <= bins <= 1000:
        raise ValueError(f"psi: bins must be in 2..1000, got {bins}")
    ref, cur = _cdf(reference, current)
    upper, cum = ref
    ranks = np.arange(1, bins) / bins
    edges = np.unique(upper[np.minimum(np.searchsorted(cum, ranks, side="left"), upper.size - 1)])
    r = np.diff(np.concatenate([[0.0], _share_at_or_below(ref, edges), [1.0]]))
    c = np.diff(np.concatenate([[0.0], _share_at_or_below(cur, edges), [1.0]]))
    r, c = np.maximum(r, EPSILON), np.maximum(c, EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def ks(reference: ColumnSketch, current: ColumnSketch) -> float:
    """Kolmogorov-Smirnov statistic of the two runs' distributions (see the module docstring for its accuracy)."""
    ref, cur = _cdf(reference, current)
    grid = np.union1d(ref[0], cur[0])
    return float(np.max(np.abs(_share_at_or_below(ref, grid) - _share_at_or_below(cur, grid))))


def ks_tolerance(reference: ColumnSketch, current: ColumnSketch) -> float:
    """How far below the exact two-sample KS statistic ks() can be: the largest share one bucket holds in either run.
    The zero count is left out: it holds exact zeros (and float64 subnormals), a single point with no CDF inside."""
    shares = []
    for s in (reference, current):
        upper, _, counts = s.cells()
        spread = counts[upper != 0.0]
        shares.append(float(spread.max() / s.count) if spread.size else 0.0)
    return max(shares)


METRICS = {"psi": psi, "ks": ks}


def drift(reference: ColumnSketch, current: ColumnSketch, reference_run: str, metric: str = DEFAULT_METRIC,
          threshold: float | None = None) -> dict[str, Any]:
    """The `tfscore.api.statistics.Drift` wire form: the metric's value, the threshold applied (given, else the
    metric's default) and whether the value exceeds it."""
    if metric not in METRICS:
        raise ValueError(f"drift metric {metric!r} is not one of {', '.join(METRICS)}")
    metric = str(metric)
    if threshold is not None and not (math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"drift threshold must be a non-negative number, got {threshold}")
    value = METRICS[metric](reference, current)
    applied = THRESHOLDS[metric] if threshold is None else float(threshold)
    return {"metric": metric, "value": value, "reference": reference_run, "threshold": applied,
            "exceeded": value > applied}
