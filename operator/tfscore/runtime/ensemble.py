"""Several models in one pass over the input: each bound to the same batch on its own terms, their outputs side by side.

One scan of the input feeds every model (each loaded once per Python worker). A row that is invalid for any model is
invalid once — quarantined once, or the run fails naming the model — never once per model. The output is the
passthrough columns, then every model's prediction columns in the order of `models`. A single `model` is a pass of one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tfscore.api.scoringjob import ModelEntry
from tfscore.runtime.binding import Binding, OutputBinding, bind, check_column_keys
from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.model import ResolvedModel


@contextmanager
def naming(entry: ModelEntry) -> Iterator[None]:
    """An error about one of several models names it: `models[1] (challenger): signature 'score' not found …`."""
    try:
        yield
    except TfscoreError as exc:
        if not entry.name:
            raise
        raise type(exc)(f"{entry.label}: {str(exc).removeprefix('model.')}") from None


@dataclass(frozen=True)
class Member:
    entry: ModelEntry
    model: ResolvedModel
    binding: Binding  # the first member's carries the passthrough columns


@dataclass(frozen=True)
class Pass:
    members: tuple[Member, ...]

    @property
    def passthrough(self) -> tuple[str, ...]:
        return self.members[0].binding.passthrough

    @property
    def outputs(self) -> list[OutputBinding]:
        return [o for m in self.members for o in m.binding.outputs]

    @property
    def read_columns(self) -> list[str]:
        """Every input column any model reads (and the passthrough), each once, in a stable order."""
        return list(dict.fromkeys(c for m in self.members for c in m.binding.read_columns))

    def output_schema(self) -> pa.Schema:
        fields = list(self.members[0].binding.output_schema())
        for m in self.members[1:]:
            fields += list(m.binding.output_schema())
        return pa.schema(fields)

    def validate(self, batch: pa.RecordBatch) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The union of every model's invalid rows; each row's reason is the first model's that refused it."""
        invalid = reasons = None
        for m in self.members:
            mask, why = m.binding.validate(batch)
            if mask is None:
                continue
            if len(self.members) > 1:
                why = np.array([None if r is None else f"{m.entry.label}: {r}" for r in why], dtype=object)
            if invalid is None:
                invalid, reasons = mask.copy(), why
            else:
                fresh = mask & ~invalid
                reasons[fresh] = why[fresh]
                invalid |= mask
        return invalid, reasons

    def to_output(self, batch: pa.RecordBatch, results: Sequence[Mapping[str, np.ndarray]]) -> pa.RecordBatch:
        parts = [m.binding.to_output(batch, r) for m, r in zip(self.members, results, strict=True)]
        columns = [c for p in parts for c in p.columns]
        return pa.RecordBatch.from_arrays(columns, schema=self.output_schema())


def bind_all(entries: Sequence[ModelEntry], models: Sequence[ResolvedModel], schema: pa.Schema,
             passthrough: Sequence[str], source: str) -> Pass:
    """Bind every model to the input's schema; prediction columns must not clash with each other or the passthrough."""
    members = []
    taken = {c: "output.passthrough" for c in passthrough}
    for i, (entry, model) in enumerate(zip(entries, models, strict=True)):
        predictions = entry.predictions or ({k: f"{entry.prefix}{k}" for k in model.signature.outputs}
                                            if entry.prefix else {})
        columns = {**{k: v for k, v in entry.shared.items() if k in model.signature.inputs}, **entry.columns}
        with naming(entry):
            check_column_keys(model.signature, entry.columns, "columns" if entry.shared else "input.columns")
            binding = bind(model.signature, schema, columns, passthrough if i == 0 else (), predictions, source)
        for o in binding.outputs:
            if o.column in taken and i > 0:
                raise TfscoreError(f"{entry.label}: prediction column {o.column!r} is also {taken[o.column]}'s; name "
                                   "it apart in this model's predictions")
            taken[o.column] = entry.label
        members.append(Member(entry, model, binding))
    return Pass(tuple(members))
