"""Loading a manifest (YAML or JSON, the same file `kubectl apply` takes) with errors that name the field: a ScoringJob,
or with `load_any` a ScoringJob or a ScoringSchedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from tfscore.api.common import API_VERSION, format_validation_error
from tfscore.api.scoringjob import KIND, ScoringJob
from tfscore.api.scoringschedule import ScoringSchedule

MODELS: dict[str, type[ScoringJob] | type[ScoringSchedule]] = {KIND: ScoringJob, "ScoringSchedule": ScoringSchedule}


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the file and the field."""


def parse(doc: Any, source: str = "manifest", model: type[Any] = ScoringJob) -> Any:
    kind = get_args(model.model_fields["kind"].annotation)[0]
    if not isinstance(doc, dict):
        raise ManifestError(f"{source}: expected a {kind} object, got {type(doc).__name__}")
    if doc.get("kind") != kind or doc.get("apiVersion") != API_VERSION:
        raise ManifestError(f"{source}: expected apiVersion {API_VERSION} and kind {kind}, got "
                            f"{doc.get('apiVersion')!r} / {doc.get('kind')!r}")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ManifestError(f"{source}: invalid {kind}:\n{format_validation_error(exc)}") from None


def load(path: str | Path) -> ScoringJob:
    """The ScoringJob in a YAML/JSON file (a multi-document YAML may hold other kinds; exactly one ScoringJob)."""
    return load_any(path, (KIND,))


def load_any(path: str | Path, kinds: tuple[str, ...] = tuple(MODELS)) -> Any:
    """The one manifest of one of `kinds` in a YAML/JSON file (other kinds in a multi-document YAML are ignored)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        docs = [json.loads(text)] if p.suffix == ".json" else [d for d in yaml.safe_load_all(text) if d is not None]
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}") from None
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") in kinds]
    if len(found) != 1:
        if len(docs) == 1 and len(kinds) == 1:
            return parse(docs[0], str(path), MODELS[kinds[0]])  # says what is wrong with the kind or apiVersion
        if len(docs) == 1:
            doc = docs[0] if isinstance(docs[0], dict) else {}
            raise ManifestError(f"{path}: expected apiVersion {API_VERSION} and kind {' or '.join(kinds)}, got "
                                f"{doc.get('apiVersion')!r} / {doc.get('kind')!r}")
        raise ManifestError(f"{path}: expected exactly one {' or '.join(kinds)}, found {len(found)}")
    return parse(found[0], str(path), MODELS[found[0]["kind"]])
