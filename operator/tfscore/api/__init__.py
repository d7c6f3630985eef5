"""The ScoringJob API (pydantic v2 models): the single source of truth for the CRD, the operator and `tfscore run`."""
