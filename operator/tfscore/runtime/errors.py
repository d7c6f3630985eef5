"""Errors the runtime raises for bad input: one clear sentence naming the field, column or file."""

from __future__ import annotations

import re


class TfscoreError(Exception):
    """A problem with the job's input (spec, model, data, output): the message names the thing and says what to do."""

    exit_code = 2
    reason = "RunFailed"  # the termination message's reason (api.contract.Failure): how the operator names the failure


class InvalidRowError(TfscoreError):
    """A row that cannot be scored (null, wrong array length, …) under onInvalidRow: fail."""


class Terminated(TfscoreError):
    """SIGTERM while scoring (the driver pod was deleted or evicted): stop the tasks, discard the staging, commit nothing."""

    reason = "Terminated"


class DriftExceeded(TfscoreError):
    """The predictions drifted beyond the drift policy's threshold with action fail: nothing is committed."""

    reason = "DriftExceeded"


# Errors raised inside Python workers reach the driver wrapped in Spark's exception text. The marker lets the driver
# recover the original one-line message instead of printing a JVM stack trace.
_MARK = "\u00abtfscore\u00bb"
_MARKED = re.compile(_MARK + r"(?P<kind>\w+)" + _MARK + r"(?P<msg>.*?)" + _MARK, re.S)


def marked(exc: TfscoreError) -> str:
    return f"{_MARK}{type(exc).__name__}{_MARK}{exc}{_MARK}"


class WorkerError(TfscoreError):
    """Raised in a Python worker; its text carries the marked original so the driver can unwrap it."""

    def __init__(self, original: TfscoreError):
        super().__init__(marked(original))
        self.original = original


def unwrap(exc: BaseException) -> TfscoreError | None:
    """The TfscoreError a Spark failure carries, if any (searching the whole chained text)."""
    text = str(exc)
    m = _MARKED.search(text)
    if not m:
        return None
    kind = {"InvalidRowError": InvalidRowError}.get(m.group("kind"), TfscoreError)
    return kind(m.group("msg"))


def cause(exc: BaseException, limit: int = 300) -> str:
    """One line saying why `exc` happened. A py4j Java error's own text is "An error occurred while calling o55.load.",
    which says nothing: use the innermost Java cause instead ("ClassNotFoundException: Class …S3AFileSystem not found",
    "FileNotFoundException: No such file or directory: s3a://…")."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            while java.getCause() is not None:
                java = java.getCause()
            text = f"{java.getClass().getSimpleName()}: {java.getMessage()}"
        except Exception:  # noqa: BLE001 - the JVM may be gone; fall back to the Python text
            text = str(exc)
    else:
        text = str(exc)
    text = text.strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return line if len(line) <= limit else line[:limit - 1] + "…"
