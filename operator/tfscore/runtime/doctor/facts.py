"""What this environment is, as an image manifest, and how two manifests differ (worded once, for every caller).

Every image carries a manifest of what it holds (versions only: no hostnames, no clocks), written by
`tfscore doctor --write-manifest` during the image build. `facts()` observes the live environment the same way;
`compare` lists the fields that differ and `drift_message` / `executor_mismatch` word a difference as one sentence;
`recorded_and_drift` is the one place that loads an image manifest and compares it with the live environment.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from tfscore.runtime.errors import TfscoreError

DEFAULT_MANIFEST = "/opt/tfscore/image-manifest.json"
SCHEMA = 1

# What a manifest records, in the order differences are reported, with the words used in messages.
FIELDS: dict[str, str] = {
    "image": "image",
    "tfscore": "tfscore version",
    "tfscoreSource": "tfscore source digest",
    "python": "Python",
    "glibc": "glibc",
    "machine": "CPU architecture",
    "tensorflow": "TensorFlow",
    "tensorflowWheel": "TensorFlow wheel tag",
    "tensorflowBuild": "TensorFlow build",
    "java": "Java",
    "spark": "Spark",
    "pyspark": "pyspark",
    "numpy": "numpy",
    "pyarrow": "pyarrow",
    "pandas": "pandas",
    "keras": "Keras",
    "packages": "installed Python packages (digest)",
}
# Labels name an image; they are not facts this process can observe, so a live environment is compared without them.
LABELS = ("image", "base")





# ---------------------------------------------------------------- facts: the manifest of this environment


def manifest_path() -> Path:
    return Path(os.environ.get("TFSCORE_IMAGE_MANIFEST") or DEFAULT_MANIFEST)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def tensorflow_distribution() -> metadata.Distribution | None:
    """The installed distribution that provides the `tensorflow` package (tensorflow, tensorflow-cpu, …)."""
    names = metadata.packages_distributions().get("tensorflow", [])
    for name in sorted(names, key=lambda n: n != "tensorflow"):  # the real wheel before shims
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.read_text("WHEEL"):
            return dist
    return None


def wheel_tag(dist: metadata.Distribution | None) -> str | None:
    text = dist.read_text("WHEEL") if dist else None
    tags = re.findall(r"^Tag:\s*(\S+)", text or "", re.M)
    return tags[0] if tags else None


def manylinux_glibc(tag: str | None) -> tuple[int, int] | None:
    """The glibc a wheel needs from its platform tag: manylinux_2_27_x86_64 → (2, 27); manylinux2014 → (2, 17)."""
    if not tag:
        return None
    m = re.search(r"manylinux_(\d+)_(\d+)_", tag)
    if m:
        return int(m.group(1)), int(m.group(2))
    legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
    for name, need in legacy.items():
        if f"{name}_" in tag:
            return need
    return None


def glibc_version() -> str | None:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return None
    m = re.match(r"glibc\s+(\S+)", text)
    return m.group(1) if m else None


def as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def tensorflow_build(dist: metadata.Distribution | None) -> str | None:
    """cpu, or cuda <version>/cudnn <version>, read from TensorFlow's build_info.py without importing TensorFlow."""
    if dist is None:
        return None
    path = Path(dist.locate_file("tensorflow/python/platform/build_info.py"))
    if not path.is_file():
        return None
    text = path.read_text()
    m = re.search(r"OrderedDict\((\[.*\])\)", text, re.S)
    info = dict(ast.literal_eval(m.group(1))) if m else {}
    if info.get("is_cuda_build"):
        return f"cuda {info.get('cuda_version', '?')}/cudnn {info.get('cudnn_version', '?')}"
    if info.get("is_rocm_build"):
        return "rocm"
    return "cpu"


def java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


@lru_cache(maxsize=4)
def _java_version_text(java: str) -> str:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    return out.stderr + out.stdout


def java_version(java: str | None) -> str | None:
    """The JVM's exact build (17.0.15+6-Debian-1deb12u1), else its version string; None when there is no JVM."""
    if not java:
        return None
    try:
        text = _java_version_text(java)
    except (OSError, subprocess.TimeoutExpired):
        return None
    build = re.search(r"\(build ([^)]+)\)", text)
    version = re.search(r'version "([^"]+)"', text)
    if build:
        return build.group(1).split(",")[0].strip()
    return version.group(1) if version else None


def java_major(version: str | None) -> int | None:
    if not version:
        return None
    parts = as_tuple(version)
    if not parts:
        return None
    return parts[1] if parts[0] == 1 and len(parts) > 1 else parts[0]  # 1.8.0 → 8


def spark_jars() -> Path | None:
    home = os.environ.get("SPARK_HOME")
    candidates = [Path(home) / "jars"] if home else []
    try:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
        if spec and spec.origin:
            candidates.append(Path(spec.origin).parent / "jars")
    except (ImportError, ValueError):
        pass
    return next((c for c in candidates if c.is_dir()), None)


def spark_jar_version(jars: Path | None) -> str | None:
    for jar in sorted(jars.glob("spark-core_*.jar")) if jars else ():
        m = re.match(r"spark-core_[\d.]+-(.+)\.jar$", jar.name)
        if m:
            return m.group(1)
    return None


def source_digest() -> str:
    """A digest of the tfscore package's Python files: two builds of one version with different code differ here."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def packages_digest() -> str:
    """A digest of every distribution installed in this interpreter's site-packages (name==version, sorted)."""
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    names = sorted({f"{_normal(d.metadata['Name'] or '')}=={d.version}"
                    for d in metadata.distributions(path=paths)})
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def facts() -> dict[str, Any]:
    """This environment's manifest, observed now (cheap: package metadata and `java -version`, no TensorFlow import)."""
    tf = tensorflow_distribution()
    jars = spark_jars()
    return {
        "schema": SCHEMA,
        "tfscore": _version("tfscore"),
        "tfscoreSource": source_digest(),
        "python": platform.python_version(),
        "glibc": glibc_version(),
        "machine": platform.machine(),
        "tensorflow": f"{_normal(tf.metadata['Name'])} {tf.version}" if tf else None,
        "tensorflowWheel": wheel_tag(tf),
        "tensorflowBuild": tensorflow_build(tf),
        "java": java_version(java_binary()),
        "spark": spark_jar_version(jars),
        "pyspark": _version("pyspark"),
        "numpy": _version("numpy"),
        "pyarrow": _version("pyarrow"),
        "pandas": _version("pandas"),
        "keras": _version("keras"),
        "packages": packages_digest(),
    }


def labelled(manifest: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The manifest with the image's name (TFSCORE_IMAGE) and base (TFSCORE_BASE_IMAGE), as image builds set them."""
    env = os.environ if env is None else env
    return {"image": env.get("TFSCORE_IMAGE") or None, "base": env.get("TFSCORE_BASE_IMAGE") or None, **manifest}


def load_manifest(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise TfscoreError(f"image manifest {p} does not exist: build the image with `make images` (images/Dockerfile "
                           "runs tfscore doctor --write-manifest), or drop --check-manifest") from None
    except (OSError, ValueError) as exc:
        raise TfscoreError(f"image manifest {p} is unreadable ({exc}): rebuild the image") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise TfscoreError(f"image manifest {p} has schema {data.get('schema') if isinstance(data, dict) else '?'}, "
                           f"this tfscore reads schema {SCHEMA}: rebuild the image with this tfscore version")
    return data


def write_manifest(path: str | Path, manifest: Mapping[str, Any]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(dict(manifest), indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- comparing manifests (pure)


@dataclass(frozen=True)
class Difference:
    field: str
    expected: Any
    actual: Any

    @property
    def label(self) -> str:
        return FIELDS.get(self.field, self.field)


def compare(expected: Mapping[str, Any], actual: Mapping[str, Any], ignore: tuple[str, ...] = ()) -> list[Difference]:
    """Fields whose values differ, in FIELDS order (unknown fields last, by name). A field missing on one side differs
    only when the other side has a value for it."""
    keys = [k for k in FIELDS if k in expected or k in actual]
    keys += sorted((set(expected) | set(actual)) - set(FIELDS) - {"schema", "base"})
    return [Difference(k, expected.get(k), actual.get(k)) for k in keys
            if k not in ignore and expected.get(k) != actual.get(k)]


def image_of(manifest: Mapping[str, Any]) -> str:
    return manifest.get("image") or "an unlabelled image"


def plain(value: Any) -> str:
    return "nothing" if value in (None, "") else str(value)


def executor_mismatch(executor: str, host: str, driver: Mapping[str, Any], reported: Mapping[str, Any],
                      diffs: list[Difference]) -> str:
    """One sentence naming the executor, both images and the first differing field (and how many others differ)."""
    first = diffs[0]
    more = f" (and {len(diffs) - 1} more field{'s' if len(diffs) > 2 else ''})" if len(diffs) > 1 else ""
    if first.field == "image":
        what = f"runs {image_of(reported)} but the driver runs {image_of(driver)}"
        if len(diffs) > 1:
            d = diffs[1]
            what += f" ({d.label} {plain(d.actual)} vs {plain(d.expected)})"
            more = f" (and {len(diffs) - 2} more field{'s' if len(diffs) > 3 else ''})" if len(diffs) > 2 else ""
    else:
        what = (f"runs {image_of(reported)} with {first.label} {plain(first.actual)}, but the driver runs "
                f"{image_of(driver)} with {first.label} {plain(first.expected)}")
    return (f"executor {executor} on {host} {what}{more}: run the driver and every executor from one image "
            "(spark.kubernetes.container.image = the driver's image digest) so native libraries and versions match")


def drift_message(path: str | Path, recorded: Mapping[str, Any], diffs: list[Difference]) -> str:
    first = diffs[0]
    more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
    return (f"this environment differs from the image manifest {path} of {image_of(recorded)}: {first.label} is "
            f"{plain(first.actual)} here but {plain(first.expected)} in the manifest{more}: run the image unmodified "
            "(no mounted site-packages, PYTHONPATH, LD_LIBRARY_PATH or JAVA_HOME overrides) or rebuild it")




def recorded_and_drift(path: str | Path, live: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], str | None]:
    """The image manifest at `path`, and how the live environment drifted from it (one sentence), or None."""
    recorded = load_manifest(path)
    diffs = compare(recorded, facts() if live is None else live, ignore=LABELS)
    return recorded, drift_message(path, recorded, diffs) if diffs else None
