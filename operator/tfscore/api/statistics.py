"""Prediction statistics in a run's status: per-column summaries, drift against the previous successful run, and
champion/challenger agreement. The runtime builds them on the executors in the scoring pass (runtime/stats.py,
runtime/drift.py, runtime/agreement.py) and their `summary()` forms validate against these models.

No NaN or infinity ever appears here (a Kubernetes status is JSON): values that are undefined are absent.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from tfscore.api.common import StatusModel

QUANTILE_KEYS = ("p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99")
MAX_ELEMENTS = 16  # a fixed [None, k] prediction with k up to this gets one entry per element
DEFAULT_DRIFT_THRESHOLDS = {"psi": 0.25, "ks": 0.1}  # PSI > 0.25: a major shift; KS 0.1: a practical effect size


class ColumnStatistics(StatusModel):
    """One prediction column over every row the run scored (a fixed-width list column of up to 16 values per row has
    one entry per element, `name[0]`, `name[1]`, …; a wider or variable one is summarised flattened)."""

    count: Annotated[int, Field(ge=0, description="Finite values summarised by min, max, mean, stddev and quantiles.")]
    nulls: Annotated[int, Field(ge=0, description="Null values (a null row of a list column counts once).")] = 0
    nans: Annotated[int, Field(ge=0, description="NaN values (counted, left out of the other statistics).")] = 0
    infinities: Annotated[int, Field(ge=0, description="+inf and -inf values (counted, left out of the other "
                                                       "statistics).")] = 0
    min: Annotated[float | None, Field(description="Smallest finite value (exact).")] = None
    max: Annotated[float | None, Field(description="Largest finite value (exact).")] = None
    mean: Annotated[float | None, Field(description="Mean of the finite values.")] = None
    stddev: Annotated[float | None, Field(description="Population standard deviation of the finite values.")] = None
    quantiles: Annotated[dict[str, float], Field(description=f"Estimated quantiles {', '.join(QUANTILE_KEYS)} of the "
                                                             "finite values, each within relativeAccuracy of the "
                                                             "exact one.")] = {}
    relative_accuracy: Annotated[float | None, Field(gt=0, lt=1, description="Bound on |estimate - exact| / |exact| "
                                                                             "of every quantile.")] = None


class DriftMetric(StrEnum):
    """How two runs' distributions are compared."""

    psi = "psi"  # Population Stability Index over the reference's deciles (the default)
    ks = "ks"  # Kolmogorov-Smirnov statistic


class Drift(StatusModel):
    """How far this run's distribution of one prediction column moved from the reference run's."""

    metric: Annotated[DriftMetric, Field(description="psi (Population Stability Index over the reference's deciles; "
                                                     "< 0.1 stable, 0.1-0.25 moderate, > 0.25 major) or ks "
                                                     "(Kolmogorov-Smirnov statistic, 0-1).")]
    value: Annotated[float, Field(ge=0, description="The metric's value.")]
    reference: Annotated[str, Field(description="The run compared with (the previous successful run).")]
    threshold: Annotated[float | None, Field(ge=0, description="The threshold applied: the drift policy's, else the "
                                                               "metric's default ("
                                                               + ", ".join(f"{k} {v}" for k, v in
                                                                           DEFAULT_DRIFT_THRESHOLDS.items())
                                                               + ").")] = None
    exceeded: Annotated[bool, Field(description="value > threshold.")] = False


class Agreement(StatusModel):
    """Champion/challenger: how closely two models' predictions for the same rows agree."""

    models: Annotated[list[str], Field(min_length=2, max_length=2, description="The two models compared.")]
    columns: Annotated[list[str], Field(min_length=2, max_length=2, description="The prediction column compared, one "
                                                                                "per model.")]
    correlation: Annotated[float | None, Field(ge=-1, le=1, description="Pearson correlation of the two models' "
                                                                        "values (absent when either is constant).")] = None
    class_disagreement: Annotated[float | None, Field(ge=0, le=1, description="Classifiers: share of rows whose "
                                                                              "predicted class differs (p >= 0.5 for "
                                                                              "one probability, argmax for "
                                                                              "several).")] = None
    rows: Annotated[int, Field(ge=0, description="Rows compared.")] = 0
    rows_skipped: Annotated[int, Field(ge=0, description="Rows left out: null, NaN or infinite on either side.")] = 0


class PredictionStatistics(StatusModel):
    """Statistics of a run's predictions, built in the scoring pass (no second read of the data)."""

    columns: Annotated[dict[str, ColumnStatistics], Field(description="Per prediction column (or list element).")] = {}
    drift: Annotated[dict[str, Drift], Field(description="Per prediction column: drift against the reference run.")] = {}
    agreement: Annotated[list[Agreement], Field(description="Champion/challenger comparisons.")] = []
