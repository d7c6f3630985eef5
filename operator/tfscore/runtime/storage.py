"""Storage for every path of a run: URIs → filesystems, the Spark spelling of a URI, listings, the few writes the commit
needs (exclusive create, whole-object put, idempotent move), and storage failures worded as one sentence.

fsspec serves the Arrow reader and writer, the model download and the commit; Spark reads and writes through Hadoop's
connectors (tfscore.runtime.cloud configures both from one environment). Every comparison of two locations goes through
tfscore.api.uris.normalise (`s3://b/x/` and `s3a://b/./x` are one place).
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec

from tfscore.api.uris import Location, normalise
from tfscore.runtime import cloud
from tfscore.runtime.errors import TfscoreError

# Where storage clients' exceptions come from (credentials, permissions, unreachable endpoints, HTTP errors).
_STORAGE_MODULES = {"botocore", "aiobotocore", "s3fs", "gcsfs", "google", "adlfs", "azure", "aiohttp", "fsspec",
                    "requests", "urllib3", "pyarrow"}


def location(uri: str) -> Location:
    """`uri` in its one spelling (relative local paths against this process's working directory)."""
    return normalise(uri, os.getcwd())


def filesystem(uri: str, field: str):
    """(fsspec filesystem, path) for `uri`, with the credentials and endpoints of this environment (cloud.py)."""
    protocol = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    try:
        options = cloud.storage_options(protocol, os.environ)
        fs, path = fsspec.core.url_to_fs(uri, **options)
    except TfscoreError:
        raise
    except (ImportError, ValueError, TypeError) as exc:
        raise TfscoreError(f"{field}: cannot open {uri!r}: {exc}") from exc
    if not is_local(fs):
        fs.invalidate_cache()  # object stores cache listings; every step here must see the writes of the step before
    return fs, path


@contextmanager
def storage_errors(field: str, uri: str | None) -> Iterator[None]:
    """A storage failure the checks before it did not foresee (no credentials, access denied, endpoint down) becomes
    one sentence naming the field and the URI, instead of a client library's traceback."""
    try:
        yield
    except TfscoreError:
        raise
    except Exception as exc:
        if not (isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _STORAGE_MODULES):
            raise
        text = " ".join(str(exc).split()) or "no details"
        raise TfscoreError(f"{field}: cannot access {uri}: {text} ({type(exc).__name__}); check the location and the "
                           "credentials the job runs with (spec.env, spec.envFrom)") from exc


def is_local(fs) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def spark_uri(uri: str) -> str:
    """The same location spelled for Spark/Hadoop: file: for local paths, s3a:// for s3://, abfss:// for az://."""
    if "://" not in uri and not uri.startswith("file:"):
        return "file://" + os.path.abspath(os.path.expanduser(uri))
    scheme, rest = uri.split("://", 1) if "://" in uri else ("file", uri[len("file:"):])
    return {"s3": "s3a", "s3n": "s3a", "gcs": "gs", "az": "abfss"}.get(scheme.lower(), scheme) + "://" + rest


def with_protocol(fs, path: str) -> str:
    """A path fsspec returned, as a URI again (object-store listings drop the scheme)."""
    if is_local(fs) or "://" in path:
        return path
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{proto}://{path}"


def hidden(name: str) -> bool:
    """Spark's rule: names starting with _ or . are metadata (success markers, staging), not data."""
    return name.startswith(("_", "."))


def exists_nonempty(fs, path: str) -> bool:
    if not fs.exists(path):
        return False
    if fs.isfile(path):
        return True
    return bool(fs.find(path))


def data_files(fs, root: str) -> list[str]:
    """Data files below `root` (sorted; anything under a hidden name skipped)."""
    out = []
    for f in sorted(fs.find(root)):
        rel = posixpath.relpath(f, root)
        if not any(hidden(part) for part in rel.split("/")):
            out.append(f)
    return out


def list_data_files(uri: str, field: str = "input.uri") -> tuple[Any, str, list[str]]:
    """(fs, root path, data files) under `uri`, which must exist."""
    fs, path = filesystem(uri, field)
    if not fs.exists(path):
        raise TfscoreError(f"{field}: {uri} does not exist")
    if fs.isfile(path):
        return fs, posixpath.dirname(path), [path]
    return fs, path.rstrip("/"), data_files(fs, path)


# ---------------------------------------------------------------- the writes the commit protocol needs


def create_exclusive(fs, path: str, data: bytes) -> bool:
    """Write `data` at `path` only if nothing is there, atomically: local O_EXCL, S3 `If-None-Match: *`, GCS
    `ifGenerationMatch=0` (fsspec's mode="create"). False when something already was."""
    if is_local(fs):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return True
    try:
        fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    except OSError as exc:  # s3fs maps 412 PreconditionFailed to an EINVAL OSError, the client's error as its cause
        if _precondition_failed(exc):
            return False
        raise
    return True


def _precondition_failed(exc: BaseException | None) -> bool:
    while exc is not None:
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
        if code in ("PreconditionFailed", "412") or getattr(exc, "code", None) == 412 or "412" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def put(fs, path: str, data: bytes) -> None:
    """Replace the object at `path` as a whole: a single PUT on object stores (atomic there), write-then-rename on a
    local filesystem (readers never see half a file)."""
    if is_local(fs):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return
    fs.pipe_file(path, data)


def read_json(fs, path: str) -> dict[str, Any] | None:
    """The JSON object at `path`, or None when it does not exist (or is not a JSON object)."""
    try:
        doc = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def move(fs, src: str, dst: str) -> None:
    """Move one file, idempotently: done when `dst` exists and `src` does not (a repeated or concurrent move of the
    same journal entry is harmless). On object stores this is a server-side copy, then the source is deleted."""
    if not fs.exists(src):
        if fs.exists(dst):
            return
        raise FileNotFoundError(f"neither {src} nor {dst} exists")
    if is_local(fs):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)
        return
    fs.copy(src, dst)
    try:
        fs.rm_file(src)
    except FileNotFoundError:
        pass


def remove(fs, path: str) -> None:
    """Delete a file or a whole prefix if it exists."""
    try:
        if fs.isdir(path):
            fs.rm(path, recursive=True)
        elif fs.exists(path):
            fs.rm_file(path)
    except FileNotFoundError:
        pass
