"""The tfscore operator (kopf): ScoringJob → ConfigMap + headless Service + driver Pod, and the Job-like lifecycle.

Imports nothing from Spark or TensorFlow (tests/unit/test_imports.py checks).
"""
