"""Loading manifests: every error names the file and the field (api/manifest.py, api/scoringjob.py)."""

from __future__ import annotations

import re

import pytest
import yaml

from tfscore.api.manifest import ManifestError, load


def test_manifest_loader_messages(tmp_path):
    p = tmp_path / "job.yaml"
    p.write_text("""apiVersion: tfscore.io/v1alpha1
kind: ScoringJob
metadata: {name: Bad_Name}
spec:
  model: {uri: /m, version: newest}
  input: {uri: /in, table: t}
  output: {uri: /out, mode: replace}
  executor: {memory: lots}
""")
    with pytest.raises(ManifestError) as info:
        load(p)
    msg = str(info.value)
    for needle in ("metadata.name", "spec.model.version", "spec.input", "exactly one of input.uri or input.table",
                   "spec.output.mode", "spec.executor.memory"):
        assert needle in msg, msg


def test_quarantine_needs_uri(tmp_path):
    p = tmp_path / "job.yaml"
    p.write_text("""apiVersion: tfscore.io/v1alpha1
kind: ScoringJob
metadata: {name: q}
spec: {model: {uri: /m}, input: {uri: /in}, output: {uri: /out}, onInvalidRow: quarantine}
""")
    with pytest.raises(ManifestError, match="quarantineUri is required when onInvalidRow is quarantine"):
        load(p)


@pytest.mark.parametrize("entry, words", [
    ({"value": "x"}, "spec.env.0.name"),
    ({"name": "A=B", "value": "x"}, "spec.env.0.name"),
    ({"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
     "an env entry takes value or valueFrom, not both"),
    ({"name": "A", "valeu": "x"}, "spec.env.0.valeu"),
], ids=["no-name", "equals-sign", "both", "typo"])
def test_env_entries_are_validated(tmp_path, entry, words):
    p = tmp_path / "job.yaml"
    p.write_text(yaml.safe_dump({"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringJob", "metadata": {"name": "e"},
                                 "spec": {"model": {"uri": "/m"}, "input": {"uri": "/in"}, "output": {"uri": "/out"},
                                          "env": [entry]}}))
    with pytest.raises(ManifestError, match=re.escape(words)):
        load(p)
