"""A run's prediction statistics, end to end: sketched per output batch in the Python workers (no second read of the
data), carried in each task's report, merged on the driver into the result's `statistics`, kept in `_tfscore.json`
(the sketches themselves, so a later run can compare against them), and compared with a reference run's (drift).

Agreement (champion/challenger): the first model against every other one, on their first pair of comparable prediction
columns (same type and width). Class disagreement is reported for probability-like columns (a single value per row in
[0, 1] on both sides: class = p >= 0.5) and for per-class scores ([None, k]: class = argmax).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from tfscore.runtime import storage
from tfscore.runtime.agreement import Agreement
from tfscore.runtime.batchstats import BatchStats, element_width, sketchable
from tfscore.runtime.drift import drift
from tfscore.runtime.ensemble import Pass
from tfscore.runtime.errors import TfscoreError

MANIFEST = "_tfscore.json"


def _pairs(scoring: Pass) -> list[tuple[str, str, str, str]]:
    """(champion, challenger, champion column, challenger column) for each comparable pair."""
    first = scoring.members[0]
    out = []
    for other in scoring.members[1:]:
        for a in first.binding.outputs:
            match = next((b for b in other.binding.outputs if b.arrow_type.equals(a.arrow_type) and sketchable(b.arrow_type)
                          and element_width(b.tensor.inner_shape) == element_width(a.tensor.inner_shape)), None)
            if match is not None and sketchable(a.arrow_type):
                out.append((first.entry.name, other.entry.name, a.column, match.column))
                break
    return out


class TaskStatistics:
    """One task's sketches of every prediction column and its agreement accumulators."""

    def __init__(self, scoring: Pass) -> None:
        self.stats = BatchStats({o.column: element_width(o.tensor.inner_shape) for o in scoring.outputs
                                 if sketchable(o.arrow_type)})
        self.agreements = [(Agreement([m1, m2], [c1, c2], classifier=True), c1, c2) for m1, m2, c1, c2 in _pairs(scoring)]

    def update(self, batch: pa.RecordBatch) -> None:
        self.stats.update(batch)
        for acc, c1, c2 in self.agreements:
            acc.update(batch.column(c1), batch.column(c2))

    def to_wire(self) -> dict[str, Any]:
        return {"sketches": self.stats.to_wire(), "agreement": [acc.to_wire() for acc, _, _ in self.agreements]}


def merge(wires: Iterable[Mapping[str, Any]]) -> tuple[BatchStats | None, list[Agreement]]:
    """The driver's merge of every task's statistics."""
    stats: BatchStats | None = None
    agreements: dict[tuple, Agreement] = {}
    for wire in wires:
        if not wire:
            continue
        task = BatchStats.from_wire(wire["sketches"])
        stats = task if stats is None else stats.merge(task)
        for a in wire.get("agreement", []):
            acc = Agreement.from_wire(a)
            key = (tuple(acc.models), tuple(acc.columns))
            agreements[key] = agreements[key].merge(acc) if key in agreements else acc
    return stats, list(agreements.values())


def summary(stats: BatchStats | None, agreements: list[Agreement], drifts: Mapping[str, Any]) -> dict[str, Any]:
    """The result's `statistics` (tfscore.api.statistics.PredictionStatistics wire form)."""
    columns = stats.summary() if stats is not None else {}
    agreement = []
    for acc in agreements:
        out = acc.summary()
        probabilities = all(_in_unit_interval(columns.get(c)) for c in acc.columns)
        if "classDisagreement" in out and not probabilities and not any(f"{acc.columns[0]}[0]" == k for k in columns):
            del out["classDisagreement"]  # a regression output: thresholding it at 0.5 means nothing
        agreement.append(out)
    return {"columns": columns, "drift": dict(drifts), "agreement": agreement}


def _in_unit_interval(column: Mapping[str, Any] | None) -> bool:
    return bool(column) and column.get("min") is not None and 0 <= column["min"] and column["max"] <= 1


def sketches_of(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return (record.get("statistics") or {}).get("sketches")


def check_drift(check, stats: BatchStats | None) -> dict[str, Any]:
    """Drift of every prediction column against the reference run's `_tfscore.json` (spec.drift)."""
    if check is None or stats is None:
        return {}
    field, uri = "drift.referenceUri", check.reference_uri
    with storage.storage_errors(field, uri):
        fs, path = storage.filesystem(uri, field)
        doc = storage.read_json(fs, path if path.endswith(MANIFEST) else posixpath.join(path, MANIFEST))
    if doc is None or sketches_of(doc) is None:
        raise TfscoreError(f"{field}: {uri} has no {MANIFEST} with prediction sketches (a tfscore output of a "
                           "successful run is needed)")
    try:
        reference = BatchStats.from_wire(sketches_of(doc), f"{field} {uri}")
    except ValueError as exc:
        raise TfscoreError(f"{field}: {exc}") from None
    ref, cur = reference.sketches, stats.sketches
    return {name: drift(ref[name], cur[name], doc.get("job") or uri, str(check.metric), check.threshold)
            for name in cur if name in ref and ref[name].count and cur[name].count}
