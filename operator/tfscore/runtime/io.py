"""Reading and writing safely: URIs, input split planning, staged output and the commit.

Output is never written in place. Spark writes into a staging directory beside the output (same filesystem), its own
commit protocol makes retried tasks write exactly once there, and only after the whole job has succeeded and the row counts
check out does `commit` move the result into place:

- errorIfExists: refused before any work when the output exists; the staging directory is renamed into place.
- overwrite: the old output is renamed aside, the new one renamed in, then the old one deleted — a failed job never touches
  the old data.
- append: the new data files (unique names) move into the existing output; a failed job adds nothing.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from tfscore.runtime.errors import TfscoreError

MANIFEST = "_tfscore.json"


# ---------------------------------------------------------------- URIs


def fs_and_path(uri: str, field: str):
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise TfscoreError(f"{field}: cannot open {uri!r}: {exc}") from exc
    if not is_local(fs):
        fs.invalidate_cache()  # object stores cache listings; every step here must see the moves of the step before
    return fs, path


# Where storage clients' exceptions come from (credentials, permissions, unreachable endpoints, HTTP errors).
_STORAGE_MODULES = {"botocore", "aiobotocore", "s3fs", "gcsfs", "google", "adlfs", "azure", "aiohttp", "fsspec",
                    "requests", "urllib3", "pyarrow"}


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
    """The same location spelled for Spark/Hadoop (file: for local paths, s3a:// for s3://)."""
    if "://" not in uri and not uri.startswith("file:"):
        return "file://" + os.path.abspath(os.path.expanduser(uri))
    if uri.startswith("s3://"):
        return "s3a://" + uri[len("s3://"):]
    return uri


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))


def exists_nonempty(fs, path: str) -> bool:
    if not fs.exists(path):
        return False
    if fs.isfile(path):
        return True
    return bool(fs.ls(path, detail=False))


def same_or_nested(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


# ---------------------------------------------------------------- input planning (the Arrow reader)


@dataclass(frozen=True)
class Split:
    """Row groups of one Parquet file that one task reads."""

    index: int
    uri: str  # fsspec-openable
    row_groups: tuple[int, ...]
    rows: int
    first_row: int = 0  # the file row number of the split's first row (for error messages)


@dataclass(frozen=True)
class ArrowPlan:
    splits: tuple[Split, ...]
    schema: pa.Schema
    rows: int
    files: int


def list_data_files(uri: str, field: str = "input.uri") -> tuple[Any, list[str]]:
    """Data files under `uri` (Spark's rules: names starting with _ or . are metadata and skipped)."""
    fs, path = fs_and_path(uri, field)
    if not fs.exists(path):
        raise TfscoreError(f"{field}: {uri} does not exist")
    if fs.isfile(path):
        return fs, [path]
    files = []
    for f in sorted(fs.find(path)):
        rel = posixpath.relpath(f, path)
        if any(_hidden(part) for part in rel.split("/")):
            continue
        files.append(f)
    return fs, files


def has_partition_dirs(uri: str, files: list[str]) -> bool:
    _, base = fsspec.core.url_to_fs(uri)
    return any("=" in part for f in files for part in posixpath.relpath(f, base).split("/")[:-1])


def _protocol_prefix(fs) -> str:
    if is_local(fs):
        return ""
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{proto}://"


def plan_parquet(uri: str, columns: list[str], parallelism: int, min_rows: int,
                 split_rows: int | None = None) -> ArrowPlan:
    """Footers only: the row groups of every file, grouped into splits; corrupt files named here, before any work."""
    fs, files = list_data_files(uri)
    prefix = _protocol_prefix(fs)

    def footer(path: str):
        try:
            with fs.open(path, "rb") as fh:
                md = pq.ParquetFile(fh).metadata
                return path, md, md.schema.to_arrow_schema()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, …
            raise TfscoreError(f"input.uri: cannot read Parquet file {prefix}{path}: {exc}") from exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        footers = list(pool.map(footer, files))
    if not footers:
        return ArrowPlan((), pa.schema([]), 0, 0)
    schema = footers[0][2]
    for path, _, other in footers[1:]:
        for c in columns:
            if c in schema.names and (c not in other.names or other.field(c).type != schema.field(c).type):
                got = other.field(c).type if c in other.names else "missing"
                raise TfscoreError(f"input.uri: column {c!r} is {schema.field(c).type} in {prefix}{footers[0][0]} "
                                   f"but {got} in {prefix}{path}")
    total = sum(md.num_rows for _, md, _ in footers)
    # Two waves of tasks: every core busy, some slack for uneven tasks, few enough that per-task overhead stays small.
    target = split_rows or max(min_rows, min(4_000_000, total // max(1, parallelism * 2) + 1))
    splits: list[Split] = []
    for path, md, _ in footers:
        groups: list[int] = []
        rows = start = 0
        for g in range(md.num_row_groups):
            n = md.row_group(g).num_rows
            if groups and rows + n > target:
                splits.append(Split(len(splits), prefix + path, tuple(groups), rows, start))
                groups, start, rows = [], start + rows, 0
            groups.append(g)
            rows += n
        if groups:
            splits.append(Split(len(splits), prefix + path, tuple(groups), rows, start))
    return ArrowPlan(tuple(splits), schema, total, len(files))


def read_split(split: Split, columns: list[str], batch_size: int):
    """Stream a split as record batches, one row group at a time: memory is bounded by a row group, not the split.

    (Given all the split's row groups at once, pyarrow pre-buffers every one of them before the first batch.) Within a
    row group the column chunks are fetched with coalesced reads, which is what object stores want."""
    fs, path = fsspec.core.url_to_fs(split.uri)
    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh, buffer_size=1 << 20)
        for group in split.row_groups:
            yield from pf.iter_batches(batch_size=batch_size, row_groups=[group], columns=columns, use_threads=False)


# ---------------------------------------------------------------- staged output and commit


def staging_uri(final_uri: str, run_id: str, kind: str = "out") -> str:
    """A sibling of the output (same filesystem, so the commit is a rename), hidden from readers of the parent."""
    parent, name = posixpath.split(final_uri.rstrip("/"))
    return posixpath.join(parent, f".{name}.tfscore-{kind}-{run_id}")


def _owner_tag(owner: str) -> str:
    return "".join(c for c in owner.lower() if c.isalnum())[:12]


def new_run_id(owner: str | None = None) -> str:
    """A fresh id for one run's staging names: `<owner>-<random>` when the run belongs to a ScoringJob (its uid), so a
    later attempt of the same job recognises what an earlier, killed attempt left behind."""
    rand = uuid.uuid4().hex[:8]
    return f"{_owner_tag(owner)}-{rand}" if owner else uuid.uuid4().hex[:12]


def recover(final_uri: str, owner: str, field: str = "output.uri") -> list[str]:
    """Clean up after earlier attempts of the same job that were killed without a chance to (SIGKILL, OOM, node lost).

    Their staging directories beside `final_uri` are deleted. An overwrite's aside copy of the old output is moved back
    when the output itself is missing (the kill fell between the two renames of the commit), and deleted otherwise (the
    new output is complete). Returns what was done, for the log."""
    fs, fpath = fs_and_path(final_uri, field)
    parent, name = posixpath.split(fpath.rstrip("/"))
    prefix, tag = f".{name}.tfscore-", f"-{_owner_tag(owner)}-"
    if not owner or not fs.exists(parent):
        return []
    done = []
    for entry in sorted(fs.ls(parent, detail=False)):
        base = posixpath.basename(entry.rstrip("/"))
        if not base.startswith(prefix) or tag not in base[len(prefix):]:
            continue
        kind = base[len(prefix):].split("-", 1)[0]
        if kind == "old" and not fs.exists(fpath):
            _move_tree(fs, entry, fpath)
            done.append(f"restored the previous output of {final_uri} from an interrupted overwrite")
        else:
            fs.rm(entry, recursive=True)
            done.append(f"removed {base} left by an earlier attempt")
    return done


def count_rows(uri: str, fmt: str, options: dict[str, str] | None = None) -> int:
    """Rows in the data files under `uri`, counted from the files themselves (footers for parquet/orc)."""
    fs, files = list_data_files(uri, "output.uri")
    total = 0
    for f in files:
        with fs.open(f, "rb") as fh:
            if fmt == "parquet":
                total += pq.ParquetFile(fh).metadata.num_rows
            elif fmt == "orc":
                import pyarrow.orc as orc

                total += orc.ORCFile(fh).nrows
            elif fmt == "json":
                total += sum(1 for line in fh if line.strip())
            elif fmt == "csv":
                import io as _io

                import pyarrow.csv as pcsv

                header = (options or {}).get("header", "false").lower() == "true"
                opts = pcsv.ReadOptions(autogenerate_column_names=not header)
                parse = pcsv.ParseOptions(newlines_in_values=True)
                total += pcsv.read_csv(_io.BytesIO(fh.read()), read_options=opts, parse_options=parse).num_rows
            else:
                raise TfscoreError(f"output.format: cannot count rows of format {fmt!r}")
    return total


def _data_files(fs, root: str) -> list[str]:
    out = []
    for f in sorted(fs.find(root)):
        rel = posixpath.relpath(f, root)
        if not any(_hidden(p) for p in rel.split("/")):
            out.append(f)
    return out


def _move_tree(fs, src: str, dst: str) -> None:
    """Move a directory: one rename on a local filesystem; file by file (copy + delete) on an object store, where
    directories are only key prefixes."""
    if is_local(fs):
        fs.mv(src, dst, recursive=True)
        return
    for f in sorted(fs.find(src)):
        fs.mv(f, posixpath.join(dst, posixpath.relpath(f, src)))
    if fs.exists(src):
        fs.rm(src, recursive=True)


def commit(staging: str, final: str, mode: str, run_id: str) -> None:
    """Move a finished staging directory into place according to `mode` (see the module docstring)."""
    fs, spath = fs_and_path(staging, "output.uri")
    _, fpath = fs_and_path(final, "output.uri")
    if mode == "errorIfExists":
        if exists_nonempty(fs, fpath):
            raise TfscoreError(f"output.uri: {final} appeared while the job ran (mode errorIfExists); "
                               f"nothing was written there")
        if fs.exists(fpath):
            fs.rm(fpath, recursive=True)  # an empty directory
        _move_tree(fs, spath, fpath)
    elif mode == "overwrite":
        aside = staging_uri(final, run_id, "old")
        _, apath = fs_and_path(aside, "output.uri")
        had_old = fs.exists(fpath)
        if had_old:
            _move_tree(fs, fpath, apath)
        try:
            _move_tree(fs, spath, fpath)
        except Exception:
            if had_old:
                if fs.exists(fpath):
                    fs.rm(fpath, recursive=True)
                _move_tree(fs, apath, fpath)  # put the old data back
            raise
        if had_old:
            fs.rm(apath, recursive=True)
    elif mode == "append":
        fs.makedirs(fpath, exist_ok=True)
        for f in _data_files(fs, spath):
            rel = posixpath.relpath(f, spath)
            target = posixpath.join(fpath, rel)
            if fs.exists(target):
                raise TfscoreError(f"output.uri: {target} already exists; append never overwrites a file")
            fs.makedirs(posixpath.dirname(target), exist_ok=True)
            fs.mv(f, target)
        fs.rm(spath, recursive=True)
    else:
        raise TfscoreError(f"output.mode: unknown mode {mode!r}")


def promote(staging: str, files: list[str], field: str, empty_schema: pa.Schema | None = None) -> None:
    """Keep exactly the task-attempt files Spark counted: move them from `_attempts/` into the staging root and drop the
    rest (files of failed or duplicate attempts). With no file at all and `empty_schema`, write one empty Parquet file so
    readers still see the schema."""
    fs, root = fs_and_path(staging, field)
    fs.makedirs(root, exist_ok=True)
    for f in files:
        _, path = fs_and_path(f, field)
        fs.mv(path, posixpath.join(root, posixpath.basename(path)))
    attempts = posixpath.join(root, "_attempts")
    if fs.exists(attempts):
        fs.rm(attempts, recursive=True)
    if not files and empty_schema is not None:
        with fs.open(posixpath.join(root, "part-00000-empty.parquet"), "wb") as fh:
            pq.write_table(empty_schema.empty_table(), fh)


def discard(uri: str | None) -> None:
    """Remove a staging directory (a failed job leaves nothing behind)."""
    if not uri:
        return
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except Exception:  # noqa: BLE001 - best effort cleanup must not mask the job's own error
        pass


def write_manifest(final: str, record: dict[str, Any], mode: str) -> None:
    """`_tfscore.json` beside the output: this run, plus the earlier runs' records when appending."""
    fs, fpath = fs_and_path(final, "output.uri")
    path = posixpath.join(fpath, MANIFEST)
    history: list[dict[str, Any]] = []
    if mode == "append" and fs.exists(path):
        try:
            old = json.loads(fs.cat_file(path))
            history = old.get("history", []) + [{k: v for k, v in old.items() if k != "history"}]
        except (ValueError, OSError):
            history = []
    doc = dict(record)
    if history:
        doc["history"] = history
    tmp = path + f".{uuid.uuid4().hex[:8]}.tmp"
    with fs.open(tmp, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
    fs.mv(tmp, path)
