"""Prediction statistics built on the executors in the scoring pass (no second read of the data), merged by the driver.

`ColumnSketch` summarises one numeric column: exact count, nulls, NaNs, infinities, min and max; mean and variance merged
with Chan et al.'s parallel formula; quantiles from a DDSketch-style logarithmic histogram (Masson, Rim & Lee, VLDB 2019).
A sketch merges (`merge`), travels as compact JSON (`to_wire` / `from_wire`) and summarises into the
`tfscore.api.statistics.ColumnStatistics` wire form (`summary`); runtime/batchstats.py holds a task's sketches.
Pure numpy + pyarrow.

What is counted where (total values = count + nulls + nans + infinities):
- nulls: Arrow nulls (a null row of a list column is one null; a null element inside a list is one null too);
- nans, infinities (±inf): counted, then left out of everything else, because one inf makes the mean and standard
  deviation meaningless and a Kubernetes status cannot carry Infinity or NaN;
- count: the finite values; min, max, mean, stddev (population, ddof=0, like numpy.std) and quantiles describe them.
Integers and booleans are sketched as float64 (an int64 beyond 2**53 loses its last bits).

Buckets: one store per sign plus a zero count (exact zeros and float64 subnormals, |x| < 2.2e-308). A magnitude
2^e·(1+f) goes to bucket e·c + floor(f·c) with c = 2^b buckets per octave: DDSketch's "linearly interpolated" mapping,
read straight off the float64's exponent and top b mantissa bits with one integer shift. Why not np.log: on this
machine np.log alone costs ~10 ms per 1M float64 (no SIMD log for float64 on AVX2) against ~1 ms for the shift, and
the integer index is exact, so bucket boundaries are exact binary fractions, identical in every sketch. Each bucket
[L, U) has U/L <= 1 + 1/c and reports 2LU/(L+U): relative error <= 1/(2c+1). b is the smallest that meets the
requested `alpha` (0.01 → c = 64, guaranteed 1/129 ≈ 0.0078; the price is 1.85x the buckets of the exact-log mapping).

Quantiles: `quantile(q)` returns the bucket holding the value of 0-based rank floor(q·(count-1)) in sorted order
(numpy's method="lower"), clamped to the exact [min, max]: |estimate - exact| <= relative_accuracy·|exact|. Each store
keeps at most `max_buckets` (4096: 64 octaves, a dynamic range of 1.8e19 per sign); beyond that the buckets of the
smallest magnitudes (those nearest zero) fold into one, so the guarantee holds for |x| >= the lowest kept bucket's
upper bound and below it the absolute error is at most that bound (softmax probabilities under ~1e-19, say). The fold
depends only on the highest index seen, so merging the sketches of splits gives exactly the sketch of the whole.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tfscore.api.statistics import QUANTILE_KEYS

ALPHA = 0.01
MAX_BUCKETS = 4096
QUANTILES = {key: int(key[1:]) / 100 for key in QUANTILE_KEYS}  # "p1" → 0.01 …
WIRE_VERSION = 1
_MAGNITUDE = np.int64(0x7FFF_FFFF_FFFF_FFFF)  # all bits of a float64 but the sign
_MIN_NORMAL = float(np.finfo(np.float64).tiny)
_SLICE = 1 << 16  # values per pass: the float64 copy and its scratch stay in cache (1M at once is ~1.5x slower)


def mantissa_bits(alpha: float) -> int:
    """The fewest mantissa bits b whose buckets (c = 2^b per octave) have relative error 1/(2c+1) <= alpha."""
    if not 1e-6 <= alpha < 1:
        raise ValueError(f"relative accuracy alpha must be in [1e-6, 1), got {alpha}")
    bits = 0
    while 1 / (2 * (1 << bits) + 1) > alpha:
        bits += 1
    return bits


class _Store:
    """Bucket counts of one sign, dense from `offset`; always trimmed (first and last count non-zero) so the folding
    rule sees the real highest index."""

    __slots__ = ("offset", "counts", "max_buckets")

    def __init__(self, max_buckets: int, offset: int = 0, counts: np.ndarray | None = None):
        self.max_buckets = max_buckets
        self.offset = offset
        self.counts = np.zeros(0, dtype=np.int64) if counts is None else counts
        self._trim()

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add(self, offset: int, counts: np.ndarray) -> None:
        """Add dense counts whose first entry is bucket `offset`."""
        if not counts.size:
            return
        start = offset - self.offset
        if self.counts.size and 0 <= start and start + counts.size <= self.counts.size:
            self.counts[start:start + counts.size] += counts  # inside the range: the ends stay non-zero, no trim
            return
        if not self.counts.size:
            self.offset, self.counts = offset, counts.astype(np.int64, copy=True)
        else:
            lo = min(self.offset, offset)
            hi = max(self.offset + self.counts.size, offset + counts.size)
            merged = np.zeros(hi - lo, dtype=np.int64)
            merged[self.offset - lo:self.offset - lo + self.counts.size] += self.counts
            merged[offset - lo:offset - lo + counts.size] += counts
            self.offset, self.counts = lo, merged
        self._trim()

    def _trim(self) -> None:
        nz = np.flatnonzero(self.counts)
        if not nz.size:
            self.offset, self.counts = 0, np.zeros(0, dtype=np.int64)
            return
        if nz[0] or nz[-1] != self.counts.size - 1:
            self.offset += int(nz[0])
            self.counts = self.counts[nz[0]:nz[-1] + 1]
        extra = self.counts.size - self.max_buckets
        if extra > 0:  # fold the lowest buckets (nearest zero) into the lowest one kept
            folded = self.counts[:extra + 1].sum()
            self.counts = self.counts[extra:].copy()
            self.counts[0] = folded
            self.offset += extra

    def indices(self) -> np.ndarray:
        return np.arange(self.offset, self.offset + self.counts.size, dtype=np.int64)

    def to_wire(self) -> dict[str, Any]:
        return {"offset": self.offset, "counts": self.counts.tolist()}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any], max_buckets: int, where: str) -> _Store:
        try:
            counts = np.asarray(wire["counts"], dtype=np.int64)
            offset = int(wire["offset"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: not a bucket store (want offset and counts): {exc}") from None
        if counts.ndim != 1 or (counts < 0).any():
            raise ValueError(f"{where}.counts: want a list of non-negative integers")
        return cls(max_buckets, offset, counts)


def _chunks(values: np.ndarray | pa.Array | pa.ChunkedArray) -> Iterator[tuple[np.ndarray, int]]:
    """(values without the nulls, as numpy, often a zero-copy view; nulls) per chunk; list arrays are flattened."""
    if isinstance(values, pa.ChunkedArray):
        for chunk in values.chunks:
            yield from _chunks(chunk)
        return
    if isinstance(values, pa.Array):
        nulls = 0
        while pa.types.is_list(values.type) or pa.types.is_large_list(values.type) \
                or pa.types.is_fixed_size_list(values.type):
            nulls += values.null_count  # a null row is one null; flatten() skips it
            values = values.flatten()
        t = values.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise ValueError(f"cannot sketch a column of type {t}: numeric or boolean values only")
        if values.null_count:
            nulls += values.null_count
            values = pc.drop_null(values)
        yield values.to_numpy(zero_copy_only=False), nulls
        return
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"cannot sketch an array of dtype {arr.dtype}: numeric or boolean values only")
    yield arr.ravel(), 0


class ColumnSketch:
    """Mergeable statistics of one numeric column (see the module docstring for the guarantees)."""

    def __init__(self, alpha: float = ALPHA, max_buckets: int = MAX_BUCKETS, *, bits: int | None = None):
        if not 16 <= max_buckets <= 1 << 20:
            raise ValueError(f"max_buckets must be in 16..{1 << 20}, got {max_buckets}")
        self.bits = mantissa_bits(alpha) if bits is None else int(bits)
        if not 0 <= self.bits <= 20:
            raise ValueError(f"mantissa bits must be in 0..20, got {self.bits}")
        self.max_buckets = int(max_buckets)
        self.count = self.nulls = self.nans = self.pos_inf = self.neg_inf = self.zeros = 0
        self.min = self.max = math.nan
        self.mean = self.m2 = 0.0
        self._pos, self._neg = _Store(self.max_buckets), _Store(self.max_buckets)

    @property
    def relative_accuracy(self) -> float:
        """The guaranteed bound on |estimate - exact| / |exact| of a quantile."""
        return 1 / (2 * (1 << self.bits) + 1)

    @property
    def infinities(self) -> int:
        return self.pos_inf + self.neg_inf

    def update(self, values: np.ndarray | pa.Array | pa.ChunkedArray) -> None:
        """Add a batch of values: a numpy array (any shape, flattened) or an Arrow array (nulls from its validity;
        list arrays flattened)."""
        for x, nulls in _chunks(values):
            self.nulls += nulls
            for start in range(0, x.size, _SLICE):
                self._add(np.ascontiguousarray(x[start:start + _SLICE], dtype=np.float64))

    def _add(self, x: np.ndarray) -> None:
        if not x.size:
            return
        with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf: the NaN says "look closer", not a warning
            total = float(x.sum())
        if not math.isfinite(total):  # NaN or ±inf somewhere (or a sum that overflowed): the slow path only then
            finite = np.isfinite(x)
            if not finite.all():
                nans = int(np.count_nonzero(np.isnan(x)))
                pos = int(np.count_nonzero(x == np.inf))
                self.nans += nans
                self.pos_inf += pos
                self.neg_inf += x.size - int(np.count_nonzero(finite)) - nans - pos
                x = x[finite]
                if not x.size:
                    return
            total = float(x.sum())
        n = x.size
        mean = total / n if math.isfinite(total) else float(np.sum(x / n))
        scratch = x - mean  # two passes within a batch: the stable variance; then reused for the bucket indices
        # einsum, not np.dot: dot goes to the multi-threaded BLAS, which next to TensorFlow's threads costs 10x
        m2 = float(np.einsum("i,i->", scratch, scratch))
        lo, hi = float(x.min()), float(x.max())
        bits, u = x.view(np.int64), scratch.view(np.int64)
        shift = 52 - self.bits
        if lo >= _MIN_NORMAL:  # the usual case for scores and probabilities: one store, no masks
            np.right_shift(bits, shift, out=u)
            self._pos.add(*self._histogram(u))
        elif hi <= -_MIN_NORMAL:
            np.bitwise_and(bits, _MAGNITUDE, out=u)
            np.right_shift(u, shift, out=u)
            self._neg.add(*self._histogram(u))
        else:
            self._mixed(bits, shift, u)
        self._merge_moments(n, mean, m2, lo, hi)

    def _histogram(self, u: np.ndarray) -> tuple[int, np.ndarray]:
        """(first bucket index, dense counts) of biased indices u (exponent << bits | top mantissa bits); u is
        overwritten."""
        first = int(u.min())
        u -= first  # bincount from the first index, not from 0: a 4096-row batch must not allocate 2^17 counters
        return first - (1023 << self.bits), np.bincount(u)

    def _mixed(self, bits: np.ndarray, shift: int, u: np.ndarray) -> None:
        # Both signs and zero in one bincount, with no boolean indexing (it costs more than several arithmetic passes):
        # key 0 = zero, 1.. = buckets first..last, the same + span for negative values (the sign bit, & span).
        c = 1 << self.bits
        np.bitwise_and(bits, _MAGNITUDE, out=u)
        np.right_shift(u, shift, out=u)
        u -= c  # zero and subnormals (exponent field 0) go negative; as unsigned they are huge, so the min skips them
        first = int(u.view(np.uint64).min())
        if first >= 1 << 62:
            self.zeros += u.size
            return
        span = int(u.max()) - first + 2
        np.maximum(u, first - 1, out=u)
        u -= first - 1
        sign = np.right_shift(bits, 63)  # -1 for negative values, 0 otherwise
        sign &= span
        u += sign
        del sign
        counts = np.bincount(u, minlength=2 * span)
        self.zeros += int(counts[0] + counts[span])
        offset = first + c - (1023 << self.bits)
        self._pos.add(offset, counts[1:span])
        self._neg.add(offset, counts[span + 1:])

    def _merge_moments(self, n: int, mean: float, m2: float, lo: float, hi: float) -> None:
        if self.count == 0:
            self.count, self.mean, self.m2, self.min, self.max = n, mean, m2, lo, hi
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * (self.count * n / total)  # Chan et al.: stable for any split
        self.count = total
        self.min, self.max = min(self.min, lo), max(self.max, hi)

    def compatible(self, other: ColumnSketch) -> bool:
        return (self.bits, self.max_buckets) == (other.bits, other.max_buckets)

    def merge(self, other: ColumnSketch) -> ColumnSketch:
        """Add `other` into this sketch (in place); returns self."""
        if not self.compatible(other):
            raise ValueError(f"cannot merge sketches of {1 << self.bits} and {1 << other.bits} buckets per octave "
                             f"(max {self.max_buckets} and {other.max_buckets} buckets)")
        self.nulls += other.nulls
        self.nans += other.nans
        self.pos_inf += other.pos_inf
        self.neg_inf += other.neg_inf
        if other.count:
            self.zeros += other.zeros
            self._pos.add(other._pos.offset, other._pos.counts)
            self._neg.add(other._neg.offset, other._neg.counts)
            self._merge_moments(other.count, other.mean, other.m2, other.min, other.max)
        return self

    @property
    def stddev(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else math.nan

    def _bounds(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = 1 << self.bits
        e, j = idx >> self.bits, idx & (c - 1)
        return np.ldexp(1 + j / c, e), np.ldexp(1 + (j + 1) / c, e)

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The histogram in value order: (upper boundary, representative value, count) per non-empty bucket.

        Every value of a bucket lies on the same side of any other bucket's boundary, and boundaries are exact binary
        fractions, identical in every sketch of the same bits, so CDFs compare exactly at them (runtime/drift.py).
        """
        n_lo, n_hi = self._bounds(self._neg.indices()[::-1])  # a negative bucket holds x in (-U, -L]
        p_lo, p_hi = self._bounds(self._pos.indices())  # a positive one x in [L, U)
        zero = [0.0] if self.zeros else []
        upper = np.concatenate([-n_lo, zero, p_hi])
        reps = np.concatenate([-2 * n_lo * n_hi / (n_lo + n_hi), zero, 2 * p_lo * p_hi / (p_lo + p_hi)])
        counts = np.concatenate([self._neg.counts[::-1], [self.zeros] if self.zeros else [], self._pos.counts])
        return upper, reps, counts.astype(np.int64)

    def quantiles(self, qs: Mapping[str, float] = QUANTILES) -> dict[str, float]:
        """Estimated quantiles by name ({} when there is no finite value)."""
        if not self.count:
            return {}
        _, reps, counts = self.cells()
        ranks = np.asarray(list(qs.values()), dtype=np.float64) * (self.count - 1)
        at = np.searchsorted(np.cumsum(counts), ranks, side="right")  # first bucket whose cumulative count > rank
        values = np.clip(reps[np.minimum(at, reps.size - 1)], self.min, self.max)
        return {name: float(v) for name, v in zip(qs, values, strict=True)}

    def quantile(self, q: float) -> float:
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        return self.quantiles({"q": q}).get("q", math.nan)

    def summary(self) -> dict[str, Any]:
        """The `tfscore.api.statistics.ColumnStatistics` wire form; undefined values (no finite value) are left out."""
        out: dict[str, Any] = {"count": self.count, "nulls": self.nulls, "nans": self.nans,
                               "infinities": self.infinities, "relativeAccuracy": self.relative_accuracy,
                               "quantiles": {}}
        if self.count:
            for key, value in (("min", self.min), ("max", self.max), ("mean", self.mean), ("stddev", self.stddev)):
                if math.isfinite(value):  # a variance of values near 1e308 can overflow: left out, not Infinity
                    out[key] = value
            out["quantiles"] = self.quantiles()
        return out

    def to_wire(self) -> dict[str, Any]:
        """Compact JSON: counters, moments and each store as its first bucket index plus dense counts."""
        wire: dict[str, Any] = {"v": WIRE_VERSION, "bits": self.bits, "maxBuckets": self.max_buckets,
                                "count": self.count, "nulls": self.nulls, "nans": self.nans, "posInf": self.pos_inf,
                                "negInf": self.neg_inf}
        if self.count:
            wire.update(min=self.min, max=self.max, mean=self.mean, m2=self.m2, zeros=self.zeros)
            if self._pos.counts.size:
                wire["pos"] = self._pos.to_wire()
            if self._neg.counts.size:
                wire["neg"] = self._neg.to_wire()
        return wire

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any], where: str = "sketch") -> ColumnSketch:
        """Read `to_wire`'s form back; a malformed one raises ValueError naming `where` and the key."""
        if not isinstance(wire, Mapping):
            raise ValueError(f"{where}: want an object, got {type(wire).__name__}")
        if wire.get("v") != WIRE_VERSION:
            raise ValueError(f"{where}: sketch format version {wire.get('v')!r} is not supported (this tfscore "
                             f"reads {WIRE_VERSION})")
        try:
            s = cls(max_buckets=int(wire["maxBuckets"]), bits=int(wire["bits"]))
            for attr, key in (("count", "count"), ("nulls", "nulls"), ("nans", "nans"), ("pos_inf", "posInf"),
                              ("neg_inf", "negInf")):
                setattr(s, attr, int(wire[key]))
                if getattr(s, attr) < 0:
                    raise ValueError(f"{key} is negative")
            if s.count:
                s.min, s.max, s.mean, s.m2 = (float(wire[k]) for k in ("min", "max", "mean", "m2"))
                s.zeros = int(wire["zeros"])
        except KeyError as exc:
            raise ValueError(f"{where}: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        if s.count:
            s._pos = _Store.from_wire(wire.get("pos", {"offset": 0, "counts": []}), s.max_buckets, f"{where}.pos")
            s._neg = _Store.from_wire(wire.get("neg", {"offset": 0, "counts": []}), s.max_buckets, f"{where}.neg")
        if s._pos.total + s._neg.total + s.zeros != s.count:
            raise ValueError(f"{where}: bucket counts add up to {s._pos.total + s._neg.total + s.zeros}, "
                             f"not count {s.count}")
        return s
