"""Keras 3 `.keras` archives: what `model.save()` writes since TensorFlow 2.16 (and what `keras.models.load_model` loads;
it no longer loads SavedModels, keras #18709).

A `.keras` file has no signature: its inputs and outputs are read from the model itself — the names, dtypes and shapes
of `model.input` / `model.output` (a dict, a list or one tensor) — and become the same `Signature` a SavedModel's
signature def gives, so the column mapping, the checks and the messages are the same for both kinds. The worker calls the
model with a dict (or list, or tensor, as it was built) of the bound inputs and gets a dict of outputs back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tfscore.runtime.errors import TfscoreError

SUFFIX = ".keras"


def archive_in(local: str) -> str | None:
    """The `.keras` file of a local model location: the file itself, or the one archive directly in a directory."""
    p = Path(local)
    if p.is_file() and p.name.endswith(SUFFIX):
        return str(p)
    if p.is_dir():
        found = sorted(c for c in p.iterdir() if c.is_file() and c.name.endswith(SUFFIX))
        if len(found) == 1:
            return str(found[0])
        if len(found) > 1:
            raise TfscoreError(f"model.uri: {local} holds several .keras archives ({', '.join(f.name for f in found)}); "
                               "give the archive's own uri or keep one per version directory")
    return None


def _load(path: str):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - a corrupt zip, an unknown layer, a Keras 2 file …
        raise TfscoreError(f"model.uri: {path} is not a Keras 3 archive keras can load: "
                           f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}") from exc


def _named(struct: Any, names: list[str] | None = None) -> dict[str, Any]:
    """A model's input or output structure as {name: KerasTensor} (dict keys, else the given or the tensors' names)."""
    if isinstance(struct, dict):
        return dict(struct)
    items = list(struct) if isinstance(struct, list | tuple) else [struct]
    keys = names if names and len(names) == len(items) else [t.name for t in items]
    return dict(zip(keys, items, strict=True))


def signature(path: str):
    """The model's inputs and outputs as a Signature (name "keras")."""
    from tfscore.runtime.model import Signature, TensorInfo

    model = _load(path)

    def info(name: str, tensor: Any) -> TensorInfo:
        dtype = str(tensor.dtype)
        return TensorInfo(name, "string" if dtype == "string" else dtype,
                          tuple(None if d is None else int(d) for d in tensor.shape))

    inputs = _named(model.input)
    outputs = _named(model.output, list(getattr(model, "output_names", None) or []))
    return Signature("keras", inputs={k: info(k, v) for k, v in sorted(inputs.items())},
                     outputs={k: info(k, v) for k, v in sorted(outputs.items())})


def callable_of(path: str):
    """fn(**tensors) -> {output name: tensor}, like a SavedModel signature's concrete function."""
    import tensorflow as tf

    model = _load(path)
    input_struct = model.input
    output_names = list(_named(model.output, list(getattr(model, "output_names", None) or [])))

    def call(**tensors):
        if isinstance(input_struct, dict):
            args: Any = {k: tf.convert_to_tensor(v) for k, v in tensors.items()}
        else:
            ordered = [tensors[name] for name in _named(input_struct)]
            args = ordered if isinstance(input_struct, list | tuple) else ordered[0]
        out = model(args, training=False)
        if isinstance(out, dict):
            return out
        out = list(out) if isinstance(out, list | tuple) else [out]
        return dict(zip(output_names, out, strict=True))

    call._tfscore_keepalive = model
    return call
