"""The local engine's reading of a Spark local master (runtime/local_engine.py); its runs are in tests/runtime."""

from __future__ import annotations

import os

from tfscore.runtime.local_engine import local_slots


def test_local_masters_give_cores_and_attempts_as_spark_does():
    assert local_slots("local") == (1, 1)
    assert local_slots("local[3]") == (3, 1)
    assert local_slots("local[2,4]") == (2, 4)
    assert local_slots("local[*]") == (len(os.sched_getaffinity(0)), 1)
    assert local_slots("k8s://https://10.0.0.1:443") is None
    assert local_slots("spark://host:7077") is None
