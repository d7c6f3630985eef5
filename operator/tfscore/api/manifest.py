"""Loading a ScoringJob manifest (YAML or JSON, the same file `kubectl apply` takes) with errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tfscore.api.common import API_VERSION, format_validation_error
from tfscore.api.scoringjob import KIND, ScoringJob


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the file and the field."""


def parse(doc: Any, source: str = "manifest") -> ScoringJob:
    if not isinstance(doc, dict):
        raise ManifestError(f"{source}: expected a {KIND} object, got {type(doc).__name__}")
    if doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise ManifestError(f"{source}: expected apiVersion {API_VERSION} and kind {KIND}, got "
                            f"{doc.get('apiVersion')!r} / {doc.get('kind')!r}")
    try:
        return ScoringJob.model_validate(doc)
    except ValidationError as exc:
        raise ManifestError(f"{source}: invalid {KIND}:\n{format_validation_error(exc)}") from None


def load(path: str | Path) -> ScoringJob:
    """The ScoringJob in a YAML/JSON file (a multi-document YAML may hold other kinds; exactly one ScoringJob)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        docs = [json.loads(text)] if p.suffix == ".json" else [d for d in yaml.safe_load_all(text) if d is not None]
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}") from None
    jobs = [d for d in docs if isinstance(d, dict) and d.get("kind") == KIND]
    if len(jobs) != 1:
        if len(docs) == 1:
            return parse(docs[0], str(path))
        raise ManifestError(f"{path}: expected exactly one {KIND}, found {len(jobs)}")
    return parse(jobs[0], str(path))
