"""Worker errors carry their one-line message back to the driver (runtime/errors.py)."""

from __future__ import annotations

from tfscore.runtime.errors import TfscoreError, WorkerError, unwrap


def test_worker_errors_unwrap():
    wrapped = WorkerError(TfscoreError("column 'f1' is null at row 3"))
    spark_text = f"org.apache.spark.SparkException: Job aborted ... PythonException: {wrapped} ... at java.lang"
    assert str(unwrap(Exception(spark_text))) == "column 'f1' is null at row 3"
    assert unwrap(Exception("plain failure")) is None


def test_cause_is_one_line():
    from tfscore.runtime.errors import cause

    assert cause(ValueError("\n  first line\nsecond")) == "first line"
    assert cause(ValueError("")) == "ValueError"
    assert len(cause(ValueError("x" * 1000))) == 300
