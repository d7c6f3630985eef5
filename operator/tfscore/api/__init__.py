"""The tfscore.io API (pydantic v2 models): the single source of truth for the CRDs, the operator and `tfscore run`.

common.py: group/version, base models, conditions · contract.py: the runtime ↔ operator contract (paths, annotation, the
Progress and Result wire forms) · scoringjob.py: the ScoringJob kind · crd.py: renders the CRDs · manifest.py: loads a
manifest file · properties.py: Java .properties text.
"""
