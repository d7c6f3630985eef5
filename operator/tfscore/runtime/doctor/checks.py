"""The checks `tfscore doctor` runs: Python, glibc against the TensorFlow wheel's manylinux tag, the CPU features TensorFlow's
wheels are built for, that TensorFlow loads and runs an op (in a subprocess: a bad native library aborts the process),
Java and the Spark jars on it, GPUs when asked for, and (`--check-manifest`) the live environment against the image manifest.

Every failure is one sentence: what is wrong, then what to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tfscore.runtime.doctor.facts import (
    as_tuple,
    facts,
    glibc_version,
    image_of,
    java_binary,
    java_major,
    manylinux_glibc,
    plain,
    recorded_and_drift,
    spark_jars,
)
from tfscore.runtime.errors import TfscoreError

# TensorFlow's x86-64 wheels are built to use AVX (documented since TensorFlow 1.6; the library aborts at import on a
# CPU without it). /proc/cpuinfo flag names.
CPU_BASELINE = {"x86_64": ("avx",)}
MIN_JAVA = 17
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
        return Check("glibc", None, f"{plain(have)} (the wheel tag {tag} names no glibc)")
    need_text = f"{need[0]}.{need[1]}"
    if have is None:
        return Check("glibc", False, f"no glibc ({f['tensorflow']} needs {need_text})",
                     f"this system has no GNU libc (musl?), but {f['tensorflow']} ({tag}) needs glibc {need_text}: "
                     "use the tfscore runtime image (Debian bookworm, glibc 2.36)")
    if as_tuple(have) < need:
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
try:  # Keras 3 loads .keras archives: one Dense layer called on the matmul's input
    import keras
    layer = keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros")
    k = {"keras": keras.__version__, "kerasResult": float(layer(tf.constant([[1.0, 2.0]])).numpy()[0][0])}
except Exception as exc:
    k = {"kerasError": f"{type(exc).__name__}: {exc}"[:300]}
print(json.dumps({"version": tf.__version__, "result": float(x.numpy()[0][0]),
                  "gpus": len(tf.config.list_physical_devices("GPU")), **k}))
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
               f"{plain(glibc_version())})"
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
                     f"TensorFlow ({plain(f.get('tensorflow'))}) does not load and run here: {probe['error']}; rebuild "
                     "the image from its locked requirements (make image-runtime) and run it unmodified")
    if abs(probe.get("result", 0.0) - 11.0) > 1e-6:
        return Check("tensorflow", False, f"matmul gave {probe.get('result')}",
                     f"TensorFlow {probe.get('version')} computed a wrong matmul ({probe.get('result')} instead of "
                     "11.0): rebuild the image from its locked requirements")
    return Check("tensorflow", True, f"{f.get('tensorflow')} ({f.get('tensorflowBuild')}) loads and runs an op")


def check_keras(f: Mapping[str, Any], probe: Mapping[str, Any]) -> Check:
    """Keras 3 (for .keras archives): it imports and a layer computes."""
    if "error" in probe:
        return Check("keras", None, "skipped: TensorFlow does not load")
    if probe.get("kerasError") or not str(probe.get("keras", "")).startswith("3."):
        cause = probe.get("kerasError") or f"Keras {probe.get('keras')} is not Keras 3"
        return Check("keras", False, cause, f"Keras does not work here ({cause}); .keras models cannot load: rebuild "
                                            "the image from its locked requirements (make image-runtime)")
    if abs(probe.get("kerasResult", 0.0) - 3.0) > 1e-6:
        return Check("keras", False, f"a Dense layer gave {probe.get('kerasResult')}",
                     f"Keras {probe.get('keras')} computed a wrong Dense layer ({probe.get('kerasResult')} instead of "
                     "3.0): rebuild the image from its locked requirements")
    return Check("keras", True, f"Keras {probe['keras']} loads and runs a layer")


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
                     f"Java {f['java']} at {java} is too old for Spark {plain(f.get('spark'))}, which needs Java "
                     f"{MIN_JAVA} or newer: set JAVA_HOME to a Java {MIN_JAVA}+ runtime or use the tfscore runtime image")
    return Check("java", True, f"{f['java']} ({java})")


def check_spark(f: Mapping[str, Any], run_jvm: bool = True) -> Check:
    if not f.get("pyspark"):
        return Check("spark", False, "pyspark is not installed",
                     f"pyspark is not installed in {sys.executable}: install the locked runtime requirements or use the "
                     "tfscore runtime image")
    if f.get("spark") != f["pyspark"]:
        return Check("spark", False, f"jars {plain(f.get('spark'))} vs pyspark {f['pyspark']}",
                     f"Spark's jars ({plain(f.get('spark'))}, in {spark_jars()}) do not match pyspark {f['pyspark']}: "
                     "unset SPARK_HOME or point it at the pyspark package's directory")
    unreadable = unreadable_jars(spark_jars())
    if unreadable:
        # The JVM skips a jar it cannot open without a word: the s3a/gs/abfs connectors would vanish from the classpath
        # and only a job on those schemes would find out (ClassNotFoundException: S3AFileSystem).
        return Check("spark", False, f"{len(unreadable)} unreadable jar(s)",
                     f"Spark's jars {', '.join(unreadable[:3])}{' …' if len(unreadable) > 3 else ''} in {spark_jars()} "
                     f"cannot be read by uid {os.getuid()}: make them world-readable (chmod 0644) or rebuild the image")
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
                     f"Java {plain(f.get('java'))} cannot start Spark {f['spark']} ({cause}): use the tfscore runtime "
                     f"image or a Java {MIN_JAVA}+ runtime matching the Spark jars")
    return Check("spark", True, f"{f['spark']} starts on Java {java_major(f.get('java'))}")


def unreadable_jars(jars: Path | None) -> list[str]:
    """The jars (and the installed connectors hack/install-jars.sh lists in .tfscore-jars) this user cannot read."""
    if jars is None or not jars.is_dir():
        return []
    names = {p.name for p in jars.glob("*.jar")}
    listed = jars / ".tfscore-jars"
    if listed.is_file() and os.access(listed, os.R_OK):
        names |= {ln.strip() for ln in listed.read_text().splitlines() if ln.strip()}
    return sorted(n for n in names if not os.access(jars / n, os.R_OK))


def check_gpus(f: Mapping[str, Any], gpus: int, probe: Mapping[str, Any],
               nvidia_smi: Callable[[], list[str] | None] | None = None) -> Check:
    if gpus <= 0:
        return Check("gpu", None, "no GPUs requested")
    if f.get("tensorflowBuild") in (None, "cpu"):
        return Check("gpu", False, f"{f.get('tensorflow')} is a CPU-only build",
                     f"{gpus} GPU(s) requested but {plain(f.get('tensorflow'))} is a CPU-only TensorFlow build: use the "
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
        recorded, drift = recorded_and_drift(path, f)
    except TfscoreError as exc:
        return Check("manifest", False, f"{path} unreadable", str(exc))
    if drift:
        return Check("manifest", False, f"differs from {path}", drift)
    return Check("manifest", True, f"matches {path} ({image_of(recorded)})")


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
        check_keras(f, probe),
        java,
        spark,
        check_gpus(f, gpus, probe),
    ]
    if manifest:
        checks.append(check_manifest(f, manifest))
    return Report(checks=checks, manifest=f)
