"""Champion/challenger agreement: how closely two models' predictions for the same rows agree, accumulated per output
batch on the executors and merged by the driver (pure numpy + pyarrow).

`Agreement` takes two aligned columns, one per model (same rows, same order), scalar or of a fixed width k:
- Pearson correlation over all value pairs (a [None, k] column contributes its k pairs per row), from co-moments merged
  with Chan et al.'s formula (no Σx² - n·x̄² cancellation, so it stays exact-ish whatever the scale or the split);
- for classifiers (`classifier=True`), the share of rows whose predicted class differs: a scalar column is a probability
  of the positive class, class 1 when p >= 0.5; a [None, k] column holds one score per class, class = argmax (the
  first on ties). (A scalar column of class ids would be thresholded too: give ids as a one-hot [None, k] instead.)
Rows where either side is null, or holds a NaN or an infinity anywhere, are skipped (and counted as skipped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

WIRE_VERSION = 1
THRESHOLD = 0.5


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _floats(values: pa.Array) -> np.ndarray:
    """float64, nulls as NaN (booleans and integers cast first: to_numpy would give objects for them when null)."""
    if not pa.types.is_floating(values.type):
        values = pc.cast(values, pa.float64())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _matrix(values: np.ndarray | pa.Array | pa.ChunkedArray, name: str) -> np.ndarray:
    """Rows × k float64 (k = 1 for a scalar column); nulls become NaN (skipped with the row)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        if _is_list(values.type):
            lengths = pc.list_value_length(values)
            bounds = pc.min_max(lengths).as_py()
            k = bounds["max"] or 0
            if bounds["min"] is not None and bounds["min"] != k:
                raise ValueError(f"agreement: column {name!r} holds {bounds['min']}..{k} values per row; "
                                 "every row must hold the same number")
            out = np.full((len(values), max(k, 1)), np.nan)
            if k:  # flatten() skips null rows: put the others back in their places, null rows stay NaN (skipped)
                valid = values.is_valid().to_numpy(zero_copy_only=False)
                out[valid] = _floats(values.flatten()).reshape(-1, k)
            return out
        return _floats(values).reshape(-1, 1)
    arr = np.asarray(values, dtype=np.float64)
    return arr.reshape(len(arr), -1) if arr.ndim else arr.reshape(1, 1)


class Agreement:
    """Pairwise statistics of two aligned prediction columns, mergeable across tasks."""

    def __init__(self, models: Sequence[str], columns: Sequence[str], classifier: bool = False):
        if len(models) != 2 or len(columns) != 2:
            raise ValueError("agreement: give two model names and two columns (one per model)")
        self.models, self.columns, self.classifier = list(models), list(columns), bool(classifier)
        self.rows = self.skipped = self.differ = 0
        self.n = 0  # value pairs (rows × k)
        self.mean_x = self.mean_y = self.sxx = self.syy = self.sxy = 0.0

    def update(self, x: np.ndarray | pa.Array | pa.ChunkedArray, y: np.ndarray | pa.Array | pa.ChunkedArray) -> None:
        """Add one batch: `x` from the first model, `y` from the second, row i of both from the same input row."""
        a, b = _matrix(x, self.columns[0]), _matrix(y, self.columns[1])
        if a.shape != b.shape:
            raise ValueError(f"agreement: columns {self.columns[0]!r} and {self.columns[1]!r} do not align "
                             f"({a.shape[0]} rows × {a.shape[1]} against {b.shape[0]} rows × {b.shape[1]})")
        ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
        kept = int(np.count_nonzero(ok))
        self.skipped += a.shape[0] - kept
        if not kept:
            return
        if kept < a.shape[0]:
            a, b = a[ok], b[ok]
        self.rows += kept
        if self.classifier:
            if a.shape[1] == 1:
                self.differ += int(np.count_nonzero((a[:, 0] >= THRESHOLD) != (b[:, 0] >= THRESHOLD)))
            else:
                self.differ += int(np.count_nonzero(np.argmax(a, axis=1) != np.argmax(b, axis=1)))
        fx, fy = a.ravel(), b.ravel()
        mx, my = float(fx.mean()), float(fy.mean())
        dx, dy = fx - mx, fy - my
        dot = np.einsum  # not `@`: that is the multi-threaded BLAS, slow next to TensorFlow's threads
        self._merge(fx.size, mx, my, float(dot("i,i->", dx, dx)), float(dot("i,i->", dy, dy)),
                    float(dot("i,i->", dx, dy)))

    def _merge(self, n: int, mx: float, my: float, sxx: float, syy: float, sxy: float) -> None:
        if not self.n:
            self.n, self.mean_x, self.mean_y, self.sxx, self.syy, self.sxy = n, mx, my, sxx, syy, sxy
            return
        total = self.n + n
        dx, dy = mx - self.mean_x, my - self.mean_y
        weight = self.n * n / total
        self.sxx += sxx + dx * dx * weight
        self.syy += syy + dy * dy * weight
        self.sxy += sxy + dx * dy * weight
        self.mean_x += dx * n / total
        self.mean_y += dy * n / total
        self.n = total

    def merge(self, other: Agreement) -> Agreement:
        """Add `other` (the same two models and columns) into this one, in place; returns self."""
        if (other.models, other.columns, other.classifier) != (self.models, self.columns, self.classifier):
            raise ValueError(f"agreement: cannot merge {other.models}/{other.columns} into {self.models}/{self.columns}")
        self.rows += other.rows
        self.skipped += other.skipped
        self.differ += other.differ
        if other.n:
            self._merge(other.n, other.mean_x, other.mean_y, other.sxx, other.syy, other.sxy)
        return self

    @property
    def correlation(self) -> float | None:
        """Pearson's r; None with fewer than two pairs or when either side is constant."""
        if self.n < 2 or self.sxx <= 0 or self.syy <= 0:
            return None
        r = self.sxy / math.sqrt(self.sxx * self.syy)
        return max(-1.0, min(1.0, r))

    def summary(self) -> dict[str, Any]:
        """The `tfscore.api.statistics.Agreement` wire form."""
        out: dict[str, Any] = {"models": self.models, "columns": self.columns, "rows": self.rows,
                               "rowsSkipped": self.skipped}
        if self.correlation is not None:
            out["correlation"] = self.correlation
        if self.classifier and self.rows:
            out["classDisagreement"] = self.differ / self.rows
        return out

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "models": self.models, "columns": self.columns, "classifier": self.classifier,
                "rows": self.rows, "skipped": self.skipped, "differ": self.differ, "n": self.n,
                "meanX": self.mean_x, "meanY": self.mean_y, "sxx": self.sxx, "syy": self.syy, "sxy": self.sxy}

    @classmethod
    def from_wire(cls, wire: dict[str, Any], where: str = "agreement") -> Agreement:
        if not isinstance(wire, dict) or wire.get("v") != WIRE_VERSION:
            raise ValueError(f"{where}: not an agreement record of format version {WIRE_VERSION}")
        try:
            acc = cls(wire["models"], wire["columns"], bool(wire["classifier"]))
            for key in ("rows", "skipped", "differ", "n"):
                setattr(acc, key, int(wire[key]))
            acc.mean_x, acc.mean_y = float(wire["meanX"]), float(wire["meanY"])
            acc.sxx, acc.syy, acc.sxy = float(wire["sxx"]), float(wire["syy"]), float(wire["sxy"])
        except KeyError as exc:
            raise ValueError(f"{where}: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        return acc
