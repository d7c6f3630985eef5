"""`tfscore doctor`: can this environment run tfscore, and is it still the environment its image was built as?

The seeds' team lost a cluster to mixed native libraries (`UnsatisfiedLinkError: libtensorflow_jni.so` on hosts with
another glibc). Here every image carries a manifest of what it holds (versions only: no hostnames, no clocks), written by
`tfscore doctor --write-manifest` during the image build, so a broken image fails its build. At run time:

- `tfscore doctor` checks Python, glibc against the TensorFlow wheel's manylinux tag, the CPU features TensorFlow's wheels
  are built for, that TensorFlow loads and runs an op (in a subprocess: a bad native library aborts the process), Java and
  the Spark jars on it, GPUs when asked for, and (`--check-manifest`) the live environment against the image manifest;
- a job (`run_job`, when the master is not local or TFSCORE_CHECK_EXECUTORS=1) checks the driver against its manifest and
  asks every executor for its own (`check_executors`): a difference fails fast, naming the executor and both images.

Every failure is one sentence: what is wrong, then what to do.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
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
    "packages": "installed Python packages (digest)",
}
# Labels name an image; they are not facts this process can observe, so a live environment is compared without them.
LABELS = ("image", "base")

# TensorFlow's x86-64 wheels are built to use AVX (documented since TensorFlow 1.6; the library aborts at import on a
# CPU without it). /proc/cpuinfo flag names.
CPU_BASELINE = {"x86_64": ("avx",)}
MIN_JAVA = 17


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


def _as_tuple(version: str) -> tuple[int, ...]:
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
    parts = _as_tuple(version)
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
    root = Path(__file__).resolve().parents[1]
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
        raise TfscoreError(f"image manifest {p} does not exist: build the image with `make images` (its Dockerfile "
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


def _image(manifest: Mapping[str, Any]) -> str:
    return manifest.get("image") or "an unlabelled image"


def _value(value: Any) -> str:
    return "nothing" if value in (None, "") else str(value)


def executor_mismatch(executor: str, host: str, driver: Mapping[str, Any], reported: Mapping[str, Any],
                      diffs: list[Difference]) -> str:
    """One sentence naming the executor, both images and the first differing field (and how many others differ)."""
    first = diffs[0]
    more = f" (and {len(diffs) - 1} more field{'s' if len(diffs) > 2 else ''})" if len(diffs) > 1 else ""
    if first.field == "image":
        what = f"runs {_image(reported)} but the driver runs {_image(driver)}"
        if len(diffs) > 1:
            d = diffs[1]
            what += f" ({d.label} {_value(d.actual)} vs {_value(d.expected)})"
            more = f" (and {len(diffs) - 2} more field{'s' if len(diffs) > 3 else ''})" if len(diffs) > 2 else ""
    else:
        what = (f"runs {_image(reported)} with {first.label} {_value(first.actual)}, but the driver runs "
                f"{_image(driver)} with {first.label} {_value(first.expected)}")
    return (f"executor {executor} on {host} {what}{more}: run the driver and every executor from one image "
            "(spark.kubernetes.container.image = the driver's image digest) so native libraries and versions match")


def drift_message(path: str | Path, recorded: Mapping[str, Any], diffs: list[Difference]) -> str:
    first = diffs[0]
    more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
    return (f"this environment differs from the image manifest {path} of {_image(recorded)}: {first.label} is "
            f"{_value(first.actual)} here but {_value(first.expected)} in the manifest{more}: run the image unmodified "
            "(no mounted site-packages, PYTHONPATH, LD_LIBRARY_PATH or JAVA_HOME overrides) or rebuild it")


# ---------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str
    error: str | None = None  # one sentence, cause then fix, when ok is False


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def failure(self) -> str | None:
        return next((c.error for c in self.checks if c.ok is False), None)

    def render(self) -> str:
        marks = {True: "ok  ", False: "FAIL", None: "skip"}
        return "".join(f"{marks[c.ok]}  {c.name:<11}{c.detail}\n" for c in self.checks)

    def to_wire(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.failure(), "checks": [asdict(c) for c in self.checks],
                "manifest": self.manifest}


def check_python(f: Mapping[str, Any]) -> Check:
    want = None
    try:
        want = metadata.metadata("tfscore").get("Requires-Python")
    except metadata.PackageNotFoundError:
        pass
    have = f["python"]
    if want:
        try:
            from packaging.specifiers import SpecifierSet

            fits = have in SpecifierSet(want)
        except ImportError:
            fits = True
        if not fits:
            return Check("python", False, f"{have} (tfscore needs {want})",
                         f"Python {have} does not satisfy tfscore's requires-python {want}: use the image's interpreter "
                         "(/opt/tfscore/venv/bin/python) or a venv with a matching Python")
    return Check("python", True, f"{have} at {sys.executable}" + (f" (tfscore needs {want})" if want else ""))


def check_glibc(f: Mapping[str, Any], tag: str | None) -> Check:
    if not f.get("tensorflow"):
        return Check("glibc", False, "TensorFlow is not installed",
                     f"TensorFlow is not installed in {sys.executable}: install the locked runtime requirements "
                     "(pip install --require-hashes -r requirements/runtime.lock) or use the tfscore runtime image")
    have, need = f.get("glibc"), manylinux_glibc(tag)
    if need is None:
        return Check("glibc", None, f"{_value(have)} (the wheel tag {tag} names no glibc)")
    need_text = f"{need[0]}.{need[1]}"
    if have is None:
        return Check("glibc", False, f"no glibc ({f['tensorflow']} needs {need_text})",
                     f"this system has no GNU libc (musl?), but {f['tensorflow']} ({tag}) needs glibc {need_text}: "
                     "use the tfscore runtime image (Debian bookworm, glibc 2.36)")
    if _as_tuple(have) < need:
        return Check("glibc", False, f"{have} < {need_text} needed by {f['tensorflow']}",
                     f"glibc {have} is older than the {need_text} that {f['tensorflow']} ({tag}) needs, so its native "
                     "library cannot load here: run the pinned tfscore runtime image (glibc 2.36) instead of the host's "
                     "Python")
    return Check("glibc", True, f"{have} (>= {need_text} for {f['tensorflow']}, {tag})")


def cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def check_cpu(f: Mapping[str, Any], cpuinfo: str | None) -> Check:
    need = CPU_BASELINE.get(f.get("machine") or "", ())
    if not need:
        return Check("cpu", None, f"{f.get('machine')}: no baseline CPU feature known for TensorFlow wheels")
    if cpuinfo is None:
        return Check("cpu", None, "/proc/cpuinfo unreadable; the TensorFlow check below still loads the library")
    flags = cpu_flags(cpuinfo)
    missing = [n for n in need if n not in flags]
    if missing:
        names = "/".join(m.upper() for m in missing)
        return Check("cpu", False, f"missing {names}",
                     f"this CPU lacks {names}, which TensorFlow's {f.get('machine')} wheels are built to use (the "
                     f"library aborts at import): run on nodes whose CPUs have {names} (e.g. a nodeSelector on "
                     f"feature.node.kubernetes.io/cpu-cpuid.{missing[0].upper()}=true)")
    extra = sorted(x for x in ("avx2", "fma", "avx512f") if x in flags)
    return Check("cpu", True, f"{'/'.join(n.upper() for n in need)} present" +
                 (f" (also {' '.join(x.upper() for x in extra)})" if extra else ""))


# Runs in a fresh interpreter: a TensorFlow that cannot load its native library may abort the whole process.
TF_PROBE = r"""
import json, os, sys
import tensorflow as tf
x = tf.linalg.matmul(tf.constant([[1.0, 2.0]]), tf.constant([[3.0], [4.0]]))
print(json.dumps({"version": tf.__version__, "result": float(x.numpy()[0][0]),
                  "gpus": len(tf.config.list_physical_devices("GPU"))}))
"""


def probe_tensorflow(timeout: float = 300) -> dict[str, Any]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1"}
    try:
        out = subprocess.run([sys.executable, "-c", TF_PROBE], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"importing TensorFlow and running one op took over {timeout:.0f} s"}
    for line in reversed(out.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": tensorflow_failure(out.stderr, out.returncode)}


def tensorflow_failure(stderr: str, returncode: int) -> str:
    """The cause in a failed TensorFlow import's output: a CPU feature, a glibc symbol version, else the last error."""
    m = re.search(r"compiled to use (\S+) instructions", stderr)
    if m:
        return f"the library was compiled to use {m.group(1)} instructions, which this CPU lacks"
    m = re.search(r"version [`']GLIBC_([\d.]+)' not found", stderr)
    if m:
        return f"its native library needs glibc {m.group(1)} (GLIBC_{m.group(1)} not found; this system has " \
               f"{_value(glibc_version())})"
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception)\b", ln)]
    if errors:
        return errors[-1][:300]
    if returncode < 0:
        return f"the process was killed by signal {-returncode}"
    return (lines[-1] if lines else f"exit status {returncode}")[:300]


def check_tensorflow(f: Mapping[str, Any], probe: Mapping[str, Any]) -> Check:
    if "error" in probe:
        return Check("tensorflow", False, probe["error"],
                     f"TensorFlow ({_value(f.get('tensorflow'))}) does not load and run here: {probe['error']}; rebuild "
                     "the image from its locked requirements (make image-runtime) and run it unmodified")
    if abs(probe.get("result", 0.0) - 11.0) > 1e-6:
        return Check("tensorflow", False, f"matmul gave {probe.get('result')}",
                     f"TensorFlow {probe.get('version')} computed a wrong matmul ({probe.get('result')} instead of "
                     "11.0): rebuild the image from its locked requirements")
    return Check("tensorflow", True, f"{f.get('tensorflow')} ({f.get('tensorflowBuild')}) loads and runs an op")


def check_java(f: Mapping[str, Any]) -> Check:
    java = java_binary()
    if java is None:
        where = (f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME")
                 else "JAVA_HOME is unset and no java is on PATH")
        return Check("java", False, "no Java runtime",
                     f"no Java runtime found ({where}): Spark needs Java {MIN_JAVA} or newer; use the tfscore runtime "
                     f"image or install openjdk-{MIN_JAVA}-jre-headless")
    major = java_major(f.get("java"))
    if major is None:
        return Check("java", False, f"{java} -version failed",
                     f"{java} -version does not run: reinstall the Java runtime (openjdk-{MIN_JAVA}-jre-headless)")
    if major < MIN_JAVA:
        return Check("java", False, f"{f['java']} < {MIN_JAVA}",
                     f"Java {f['java']} at {java} is too old for Spark {_value(f.get('spark'))}, which needs Java "
                     f"{MIN_JAVA} or newer: set JAVA_HOME to a Java {MIN_JAVA}+ runtime or use the tfscore runtime image")
    return Check("java", True, f"{f['java']} ({java})")


def check_spark(f: Mapping[str, Any], run_jvm: bool = True) -> Check:
    if not f.get("pyspark"):
        return Check("spark", False, "pyspark is not installed",
                     f"pyspark is not installed in {sys.executable}: install the locked runtime requirements or use the "
                     "tfscore runtime image")
    if f.get("spark") != f["pyspark"]:
        return Check("spark", False, f"jars {_value(f.get('spark'))} vs pyspark {f['pyspark']}",
                     f"Spark's jars ({_value(f.get('spark'))}, in {spark_jars()}) do not match pyspark {f['pyspark']}: "
                     "unset SPARK_HOME or point it at the pyspark package's directory")
    java = java_binary()
    if java is None:
        return Check("spark", None, f"{f['spark']} (no JVM to start it on)")
    if not run_jvm:
        return Check("spark", True, f"{f['spark']} (JVM not started)")
    cmd = [java, "-cp", f"{spark_jars()}/*", "org.apache.spark.deploy.SparkSubmit", "--version"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")})
        text = out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        text = str(exc)
    m = re.search(r"version (\d+\.\d+\.\S+)", text)
    if not m or m.group(1) != f["spark"]:
        cause = next((ln.strip() for ln in text.splitlines() if re.search(r"Error|Exception", ln)), text.strip()[-200:])
        return Check("spark", False, "the JVM cannot load Spark",
                     f"Java {_value(f.get('java'))} cannot start Spark {f['spark']} ({cause}): use the tfscore runtime "
                     f"image or a Java {MIN_JAVA}+ runtime matching the Spark jars")
    return Check("spark", True, f"{f['spark']} starts on Java {java_major(f.get('java'))}")


def check_gpus(f: Mapping[str, Any], gpus: int, probe: Mapping[str, Any],
               nvidia_smi: Callable[[], list[str] | None] | None = None) -> Check:
    if gpus <= 0:
        return Check("gpu", None, "no GPUs requested")
    if f.get("tensorflowBuild") in (None, "cpu"):
        return Check("gpu", False, f"{f.get('tensorflow')} is a CPU-only build",
                     f"{gpus} GPU(s) requested but {_value(f.get('tensorflow'))} is a CPU-only TensorFlow build: use the "
                     "tfscore runtime-gpu image (make image-runtime-gpu)")
    listed = (nvidia_smi or _nvidia_smi)()
    if listed is None:
        return Check("gpu", False, "nvidia-smi not found",
                     f"{gpus} GPU(s) requested but nvidia-smi is not available: run on a GPU node with the NVIDIA "
                     "container runtime and request nvidia.com/gpu for the pod")
    seen = probe.get("gpus", 0) if "error" not in probe else 0
    if len(listed) < gpus or seen < gpus:
        return Check("gpu", False, f"{len(listed)} listed by nvidia-smi, {seen} seen by TensorFlow",
                     f"{gpus} GPU(s) requested but nvidia-smi lists {len(listed)} and TensorFlow sees {seen}: request "
                     "nvidia.com/gpu for the pod and check CUDA_VISIBLE_DEVICES and the node's NVIDIA driver")
    return Check("gpu", True, f"{seen} visible to TensorFlow ({f.get('tensorflowBuild')})")


def _nvidia_smi() -> list[str] | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else None


def check_manifest(f: Mapping[str, Any], path: str | Path) -> Check:
    try:
        recorded = load_manifest(path)
    except TfscoreError as exc:
        return Check("manifest", False, f"{path} unreadable", str(exc))
    diffs = compare(recorded, f, ignore=LABELS)
    if diffs:
        return Check("manifest", False, f"{len(diffs)} field(s) differ from {path}", drift_message(path, recorded, diffs))
    return Check("manifest", True, f"matches {path} ({_image(recorded)})")


def _cpuinfo() -> str | None:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def run(gpus: int = 0, manifest: str | Path | None = None) -> Report:
    """All checks, in the order a reader wants them; the TensorFlow and Spark checks start real processes."""
    f = facts()
    with ThreadPoolExecutor(max_workers=1) as pool:
        tf_probe = pool.submit(probe_tensorflow)  # TensorFlow's import and Spark's JVM start overlap
        java, spark = check_java(f), check_spark(f)
        probe = tf_probe.result()
    checks = [
        check_python(f),
        check_glibc(f, f.get("tensorflowWheel")),
        check_cpu(f, _cpuinfo()),
        check_tensorflow(f, probe),
        java,
        spark,
        check_gpus(f, gpus, probe),
    ]
    if manifest:
        checks.append(check_manifest(f, manifest))
    return Report(checks=checks, manifest=f)


# ---------------------------------------------------------------- jobs: driver and executors


def executor_check_wanted(master: str, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return not master.startswith("local") or env.get("TFSCORE_CHECK_EXECUTORS") == "1"


def driver_manifest(path: str | Path | None = None) -> dict[str, Any]:
    """The driver's manifest: its image's (after checking this process still matches it), else the live facts."""
    p = Path(path) if path else manifest_path()
    live = facts()
    if not p.exists():
        return live
    recorded = load_manifest(p)
    diffs = compare(recorded, live, ignore=LABELS)
    if diffs:
        raise TfscoreError(drift_message(p, recorded, diffs))
    return recorded


@lru_cache(maxsize=1)
def _worker_manifest() -> tuple[dict[str, Any], str | None]:
    """(this worker's image manifest, how the live environment drifted from it or None); live facts without an image."""
    p = manifest_path()
    live = facts()
    if not p.exists():
        return live, None
    recorded = load_manifest(p)
    diffs = compare(recorded, live, ignore=LABELS)
    return recorded, drift_message(p, recorded, diffs) if diffs else None


def _report(_partition) -> list[dict[str, Any]]:
    """Runs in an executor's Python worker: who am I, and what do I run."""
    time.sleep(0.2)  # hold the slot briefly so the other executors' free slots take the remaining tasks
    manifest, drift = _worker_manifest()
    return [{"executor": os.environ.get("SPARK_EXECUTOR_ID", "driver"),
             "host": os.environ.get("SPARK_EXECUTOR_POD_NAME") or socket.gethostname(),
             "manifest": manifest, "drift": drift}]


def spark_failure(text: str) -> str:
    """The cause in a failed Spark job's text: the Python worker's exception, a program that would not start, else the
    first line."""
    python = [m.group(0) for m in re.finditer(r"^\w+(Error|Exception): .*$", text, re.M)]
    if python:
        return python[-1].strip()[:300]
    program = re.search(r"Cannot run program [^\n]*", text)
    if program:
        return program.group(0).strip()[:300]
    return (text.strip().splitlines() or ["unknown error"])[0][:300]


def check_executors(spark, expected: Mapping[str, Any]) -> None:
    """Every executor's manifest must equal the driver's; raises TfscoreError naming the first executor that differs.

    One tiny job with two tasks per task slot: all slots are free when it starts, so every registered executor takes
    some of them (executors that register later are not seen)."""
    sc = spark.sparkContext
    n = max(2, 2 * sc.defaultParallelism)
    try:
        reports = sc.parallelize(range(n), n).mapPartitions(_report).collect()
    except Exception as exc:  # noqa: BLE001 - Spark's wrapper around the executor's own failure
        raise TfscoreError(f"the executors could not report their image manifest ({spark_failure(str(exc))}): run "
                           "them from the driver's tfscore runtime image (spark.kubernetes.container.image) with "
                           "PYSPARK_PYTHON=/opt/tfscore/venv/bin/python") from None
    seen: dict[str, dict[str, Any]] = {}
    for r in reports:
        seen.setdefault(r["executor"], r)
    for executor in sorted(seen, key=lambda e: (len(e), e)):
        r = seen[executor]
        if r.get("drift"):
            raise TfscoreError(f"executor {executor} on {r['host']}: {r['drift']}")
        diffs = compare(expected, r["manifest"])
        if diffs:
            raise TfscoreError(executor_mismatch(executor, r["host"], expected, r["manifest"], diffs))
