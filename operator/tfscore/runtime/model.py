"""SavedModel resolution, local caching, signature introspection and per-process loading.

The driver resolves `version: latest` once (so a version published mid-job never mixes into a run), reads the signature from
saved_model.pb and records the fingerprint. Each executor host downloads that exact version once into a local cache, safe when
several Python workers start at the same moment, and each Python worker loads it once.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import os
import posixpath
import shutil
import sys
import tempfile
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfscore.runtime import keras_archive, savedmodel_pb, storage
from tfscore.runtime.errors import TfscoreError

SAVED_MODEL_PB = "saved_model.pb"


@dataclass(frozen=True)
class TensorInfo:
    """One signature input or output: its key, numpy dtype name ('string' for tf.string) and shape (None = unknown)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None  # None: unknown rank

    @property
    def inner_shape(self) -> tuple[int | None, ...]:
        """The per-row shape (everything after the batch dimension)."""
        if self.shape is None:
            return ()
        return tuple(self.shape[1:])

    @property
    def row_size(self) -> int | None:
        """Elements per row, or None when some inner dimension is unknown."""
        size = 1
        for d in self.inner_shape:
            if d is None:
                return None
            size *= d
        return size

    def describe(self) -> str:
        dims = "?" if self.shape is None else "[" + ", ".join("None" if d is None else str(d) for d in self.shape) + "]"
        return f"{self.name}: {self.dtype}{dims}"


@dataclass(frozen=True)
class Signature:
    name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]


@dataclass(frozen=True)
class ResolvedModel:
    """What the driver decided: the exact version directory to load, and what it looks like."""

    uri: str  # as given in the spec
    version: str  # the numeric version, or "" for an unversioned SavedModel
    version_uri: str  # the directory holding saved_model.pb
    fingerprint: str
    tags: tuple[str, ...]
    signature: Signature
    local_path: str = field(compare=False, default="")
    kind: str = "savedmodel"  # or "keras" (a .keras archive)

    def status(self) -> dict[str, Any]:
        return {"uri": self.uri, "version": self.version or None, "fingerprint": self.fingerprint,
                "signature": self.signature.name}


def _fs(uri: str):
    return storage.filesystem(uri, "model.uri")


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _is_model(fs, path: str) -> bool:
    """A SavedModel directory, a `.keras` archive, or a directory holding one."""
    if path.rstrip("/").endswith(keras_archive.SUFFIX):
        return fs.isfile(path)
    if fs.exists(_join(path, SAVED_MODEL_PB)):
        return True
    try:
        return any(e.rstrip("/").endswith(keras_archive.SUFFIX) for e in fs.ls(path, detail=False))
    except (FileNotFoundError, NotADirectoryError):
        return False


def resolve_version(uri: str, version: str) -> tuple[str, str]:
    """(version, version_uri): `uri` itself when it is a model (a SavedModel, a .keras archive or a directory holding
    one), else its numeric version directory."""
    fs, path = _fs(uri)
    if not fs.exists(path):
        raise TfscoreError(f"model.uri: {uri} does not exist")
    if _is_model(fs, path):
        return "", uri
    try:
        entries = fs.ls(path, detail=True)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise TfscoreError(f"model.uri: {uri} is not a SavedModel directory or a .keras archive") from exc
    versions = sorted(int(os.path.basename(e["name"].rstrip("/"))) for e in entries
                      if e.get("type") == "directory" and os.path.basename(e["name"].rstrip("/")).isdigit())
    if not versions:
        raise TfscoreError(f"model.uri: {uri} holds neither {SAVED_MODEL_PB}, a .keras archive nor numeric version "
                           "directories (1/, 2/, …)")
    if version == "latest":
        chosen = versions[-1]
    else:
        chosen = int(version)
        if chosen not in versions:
            raise TfscoreError(f"model.version: version {version} not found under {uri} "
                               f"(available: {', '.join(map(str, versions))})")
    version_uri = _join(uri.rstrip("/"), str(chosen))
    vfs, vpath = _fs(version_uri)
    if not _is_model(vfs, vpath):
        raise TfscoreError(f"model.version: {version_uri} has no {SAVED_MODEL_PB} and no .keras archive")
    return str(chosen), version_uri


def _download_tree(fs, root: str, target: Path) -> None:
    """Copy every file under `root` (any fsspec filesystem) into `target`, keeping relative paths. An object key that
    would land outside `target` (`../`, an absolute part) is refused: a model is a directory, never a path elsewhere."""
    base = target.resolve()
    for name, info in sorted(fs.find(root, detail=True).items()):
        rel = name[len(root):].lstrip("/")
        if not rel or name.endswith("/") or info.get("type") == "directory":
            continue
        dest = target / rel
        if not dest.resolve().is_relative_to(base):
            raise TfscoreError(f"model.uri: the object {name!r} would be written outside the model directory "
                               f"({rel!r}); a model version's keys must stay below it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(name, str(dest))


def cache_root() -> Path:
    return Path(os.environ.get("TFSCORE_CACHE") or Path.home() / ".cache" / "tfscore") / "models"


def materialize(version_uri: str) -> str:
    """A local directory holding `version_uri`: the path itself when local, else a per-host cached copy.

    Downloads once per host: an exclusive file lock serialises concurrent workers, the copy lands in a temporary directory
    and is renamed into place, so a reader never sees a half-written model.
    """
    fs, path = _fs(version_uri)
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return path
    key = hashlib.sha256(version_uri.encode()).hexdigest()[:24]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / key
    if target.is_dir():  # renamed into place only when complete
        return str(target)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_dir():
            return str(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            # A .keras archive given by its own uri. (Not any isfile(): over HTTP a directory's index page is a file.)
            if path.endswith(".keras") and fs.isfile(path):
                fs.get_file(path, str(tmp / posixpath.basename(path)))
            else:
                _download_tree(fs, path.rstrip("/"), tmp)
            if not (tmp / SAVED_MODEL_PB).exists() and keras_archive.archive_in(str(tmp)) is None:
                raise TfscoreError(f"model.uri: downloading {version_uri} gave no {SAVED_MODEL_PB} and no .keras "
                                   "archive")
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def read_signature(local_path: str, tags: list[str] | tuple[str, ...], signature: str) -> Signature:
    """Signature inputs/outputs from saved_model.pb, without loading variables (and without importing TensorFlow:
    savedmodel_pb decodes the few fields needed)."""
    try:
        graphs = savedmodel_pb.meta_graphs(Path(local_path, SAVED_MODEL_PB).read_bytes())
    except (OSError, savedmodel_pb.DecodeError, UnicodeDecodeError) as exc:
        raise TfscoreError(f"model.uri: {local_path}/{SAVED_MODEL_PB} is not a valid SavedModel: {exc}") from exc
    wanted = set(tags)
    matching = [sigs for graph_tags, sigs in graphs if graph_tags == wanted]
    if not matching:
        available = [sorted(graph_tags) for graph_tags, _ in graphs]
        raise TfscoreError(f"model.tags: no MetaGraph tagged {sorted(wanted)} in {local_path} (available: {available})")
    sigs = matching[0]
    if signature not in sigs:
        available = sorted(k for k in sigs if not k.startswith("__"))
        raise TfscoreError(f"model.signature: {signature!r} not found in {local_path} (available: {available})")
    inputs, outputs = sigs[signature]
    return Signature(
        name=signature,
        inputs={k: TensorInfo(k, *inputs[k]) for k in sorted(inputs)},
        outputs={k: TensorInfo(k, *outputs[k]) for k in sorted(outputs)},
    )


def fingerprint(local_path: str) -> str:
    """The SavedModel fingerprint (TF's singleprint when fingerprint.pb exists), else a content hash (a .keras archive's
    bytes, or every file of the directory)."""
    if Path(local_path).is_file():
        return "sha256:" + hashlib.sha256(Path(local_path).read_bytes()).hexdigest()[:32]
    if Path(local_path, "fingerprint.pb").exists():
        try:
            return savedmodel_pb.singleprint(Path(local_path, "fingerprint.pb").read_bytes())
        except (OSError, savedmodel_pb.DecodeError):  # an unreadable fingerprint falls back to hashing
            pass
    h = hashlib.sha256()
    for p in sorted(Path(local_path).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(local_path)).encode())
            h.update(p.read_bytes())
    return "sha256:" + h.hexdigest()[:32]


def resolve(spec) -> ResolvedModel:
    """Driver side: pick the version, fetch it locally, introspect it. `spec` is api.scoringjob.ModelSpec."""
    version, version_uri = resolve_version(spec.uri, str(spec.version))
    local = materialize(version_uri)
    archive = keras_archive.archive_in(local) if not Path(local, SAVED_MODEL_PB).exists() else None
    if archive is not None:  # a .keras archive: its inputs and outputs read from the model itself
        return ResolvedModel(uri=spec.uri, version=version, version_uri=version_uri, fingerprint=fingerprint(archive),
                             tags=(), signature=keras_archive.signature(archive), local_path=local, kind="keras")
    sig = read_signature(local, spec.tags, spec.signature)
    return ResolvedModel(uri=spec.uri, version=version, version_uri=version_uri, fingerprint=fingerprint(local),
                         tags=tuple(spec.tags), signature=sig, local_path=local)


# ---------------------------------------------------------------- per-process model (Python workers)

_LOADED: dict[tuple[str, str, tuple[str, ...]], Any] = {}
_LOAD_LOCK = threading.Lock()


_KERAS_EAGER = "keras.src.optimizers"


def import_tensorflow() -> types.ModuleType:
    """`import tensorflow` for a scoring worker, without the Keras import TensorFlow's own __init__ makes eagerly.

    TensorFlow ends its import with `importlib.import_module("keras.src.optimizers")` (skipped when that raises
    ImportError) so that Keras 2's optimizers register in the SavedModel registry. Keras 3 registers nothing there, and
    scoring a SavedModel calls only its signature's functions; yet that import pulls in all of Keras and pandas: ~1.3 s of
    a worker's ~5.5 s import on this machine (bench: `import tensorflow` with and without it). A placeholder module stands
    in for it during the import and is removed after, so `import keras` (a `.keras` archive: keras_archive.py) and
    `tf.keras` still load the real Keras on first use."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    placeholder = None
    if _KERAS_EAGER not in sys.modules:  # a process that imported Keras itself keeps it
        placeholder = sys.modules[_KERAS_EAGER] = types.ModuleType(_KERAS_EAGER)
    try:
        import tensorflow
    finally:
        if placeholder is not None and sys.modules.get(_KERAS_EAGER) is placeholder:
            del sys.modules[_KERAS_EAGER]
    return tensorflow


def configure_threads(cores: int) -> types.ModuleType:
    """Size TensorFlow's thread pools to the task's cores (only effective before TensorFlow's first op in the process);
    returns tensorflow."""
    cores = max(1, int(cores))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(cores))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = import_tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TF_NUM_INTEROP_THREADS"]))
    except RuntimeError:
        pass  # already initialised in this process: keep the pools it has
    return tf


def load_function(model: ResolvedModel, cores: int = 1):
    """The signature's concrete function, loaded once per process (one model per Python worker)."""
    key = (model.version_uri, model.fingerprint, model.tags + (model.signature.name,))
    fn = _LOADED.get(key)
    if fn is not None:
        return fn
    with _LOAD_LOCK:
        fn = _LOADED.get(key)
        if fn is None:
            tf = configure_threads(cores)
            local = materialize(model.version_uri)
            archive = keras_archive.archive_in(local) if model.kind == "keras" else None
            found = fingerprint(archive or local)
            if found != model.fingerprint:
                raise TfscoreError(f"model.uri: {model.version_uri} changed during the job (fingerprint {found}, the "
                                   f"driver resolved {model.fingerprint}); publish new models as new version "
                                   "directories instead of overwriting one")
            if archive is not None:
                fn = keras_archive.callable_of(archive)
            else:
                loaded = tf.saved_model.load(local, tags=list(model.tags))
                fn = loaded.signatures[model.signature.name]
                fn._tfscore_keepalive = loaded  # the function must not outlive its trackable object
            _LOADED[key] = fn
            # PySpark's daemon runs a full gc.collect() after every task of a reused worker; with TensorFlow and a model
            # loaded that walks ~10^6 objects (~150 ms per task). Freezing them, once, takes them out of every
            # collection: they live as long as the worker anyway. The local engine's workers (no pyspark in them) are
            # never collected that way, and skip the ~0.2 s this costs before their first batch.
            if "pyspark" in sys.modules:
                gc.collect()
                gc.freeze()
    return fn
