"""Each doctor check's verdict on given facts, and the report (runtime/doctor/checks.py); the real checks run in the
image tier."""

from __future__ import annotations

import json

import pytest

from tfscore.runtime.doctor import checks, facts

from .manifests import MANIFEST

CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 {extra}\n\n"


def test_glibc_older_than_the_wheel_needs_fails_with_cause_and_fix():
    check = checks.check_glibc({**MANIFEST, "glibc": "2.17"}, MANIFEST["tensorflowWheel"])
    assert check.ok is False
    assert check.error.startswith("glibc 2.17 is older than the 2.27 that tensorflow-cpu 2.21.0 "
                                  "(cp311-cp311-manylinux_2_27_x86_64) needs")
    assert "run the pinned tfscore runtime image" in check.error


def test_glibc_checks():
    assert checks.check_glibc(MANIFEST, MANIFEST["tensorflowWheel"]).ok is True
    assert checks.check_glibc({**MANIFEST, "glibc": "2.27"}, MANIFEST["tensorflowWheel"]).ok is True
    assert checks.check_glibc({**MANIFEST, "glibc": None}, MANIFEST["tensorflowWheel"]).ok is False
    missing = checks.check_glibc({**MANIFEST, "tensorflow": None}, None)
    assert missing.ok is False and "TensorFlow is not installed" in missing.error


def test_cpu_without_avx_fails_and_says_where_to_run():
    check = checks.check_cpu(MANIFEST, CPUINFO.format(extra="popcnt"))
    assert check.ok is False
    assert check.error.startswith("this CPU lacks AVX, which TensorFlow's x86_64 wheels are built to use")
    assert "cpu-cpuid.AVX" in check.error


def test_cpu_checks():
    assert checks.check_cpu(MANIFEST, CPUINFO.format(extra="avx avx2 fma")).ok is True
    assert checks.check_cpu(MANIFEST, None).ok is None
    assert checks.check_cpu({**MANIFEST, "machine": "aarch64"}, "Features : fp asimd").ok is None
    assert checks.cpu_flags(CPUINFO.format(extra="avx")) >= {"sse4_2", "avx"}


@pytest.mark.parametrize("stderr,code,cause", [
    ("2026 F cpu_feature_guard.cc] The TensorFlow library was compiled to use AVX instructions, but these aren't "
     "available on your machine.\n", -6, "the library was compiled to use AVX instructions, which this CPU lacks"),
    ("ImportError: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found (required by libtensorflow_cc.so.2)",
     1, "its native library needs glibc 2.38 (GLIBC_2.38 not found"),
    ("Traceback (most recent call last):\n  File \"<string>\", line 3\nImportError: libtensorflow_framework.so.2: "
     "cannot open shared object file: No such file or directory\n", 1,
     "ImportError: libtensorflow_framework.so.2: cannot open shared object file"),
    ("", -9, "the process was killed by signal 9"),
])
def test_tensorflow_failure_names_the_cause(stderr, code, cause):
    assert checks.tensorflow_failure(stderr, code).startswith(cause)


def test_tensorflow_check():
    assert checks.check_tensorflow(MANIFEST, {"version": "2.21.0", "result": 11.0, "gpus": 0}).ok is True
    broken = checks.check_tensorflow(MANIFEST, {"error": "ImportError: libtensorflow_framework.so.2: cannot open"})
    assert broken.ok is False
    assert broken.error.startswith("TensorFlow (tensorflow-cpu 2.21.0) does not load and run here: ImportError")
    assert "make image-runtime" in broken.error
    assert checks.check_tensorflow(MANIFEST, {"version": "2.21.0", "result": 3.0}).ok is False


def test_java_too_old_and_missing(monkeypatch):
    monkeypatch.setattr(checks, "java_binary", lambda: "/usr/lib/jvm/java-11/bin/java")
    old = checks.check_java({**MANIFEST, "java": "11.0.2+9"})
    assert old.ok is False and old.error.startswith("Java 11.0.2+9 at /usr/lib/jvm/java-11/bin/java is too old for "
                                                    "Spark 4.3.0, which needs Java 17 or newer")
    monkeypatch.setattr(checks, "java_binary", lambda: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    gone = checks.check_java({**MANIFEST, "java": None})
    assert gone.ok is False
    assert gone.error.startswith("no Java runtime found (JAVA_HOME is unset and no java is on PATH): Spark needs Java 17")


def test_spark_jars_must_match_pyspark():
    check = checks.check_spark({**MANIFEST, "spark": "3.5.1"}, run_jvm=False)
    assert check.ok is False and "do not match pyspark 4.3.0" in check.error
    assert checks.check_spark({**MANIFEST, "pyspark": None}, run_jvm=False).ok is False


def test_gpu_checks():
    gpu = {**MANIFEST, "tensorflow": "tensorflow 2.21.0", "tensorflowBuild": "cuda 12.5.1/cudnn 9"}
    assert checks.check_gpus(MANIFEST, 0, {}).ok is None
    cpu_only = checks.check_gpus(MANIFEST, 1, {"gpus": 0})
    assert cpu_only.ok is False and "runtime-gpu image" in cpu_only.error
    no_smi = checks.check_gpus(gpu, 1, {"gpus": 0}, nvidia_smi=lambda: None)
    assert no_smi.ok is False and no_smi.error.startswith("1 GPU(s) requested but nvidia-smi is not available")
    short = checks.check_gpus(gpu, 2, {"gpus": 1}, nvidia_smi=lambda: ["0"])
    assert short.ok is False and "nvidia-smi lists 1 and TensorFlow sees 1" in short.error
    assert checks.check_gpus(gpu, 2, {"gpus": 2}, nvidia_smi=lambda: ["0", "1"]).ok is True


def test_python_check_reads_requires_python(monkeypatch):
    monkeypatch.setattr(checks.metadata, "metadata", lambda name: {"Requires-Python": ">=3.11,<3.12"})
    assert checks.check_python({"python": "3.11.2"}).ok is True
    bad = checks.check_python({"python": "3.12.1"})
    assert bad.ok is False and bad.error.startswith("Python 3.12.1 does not satisfy tfscore's requires-python")


def test_manifest_check_against_a_file(tmp_path):
    path = tmp_path / "image-manifest.json"
    facts.write_manifest(path, MANIFEST)
    live = {k: v for k, v in MANIFEST.items() if k not in facts.LABELS}
    assert checks.check_manifest(live, path).ok is True
    drifted = checks.check_manifest({**live, "pyarrow": "15.0.0"}, path)
    assert drifted.ok is False and "pyarrow is 15.0.0 here but 26.0.1 in the manifest" in drifted.error
    missing = checks.check_manifest(live, tmp_path / "nope.json")
    assert missing.ok is False and "does not exist" in missing.error
    path.write_text(json.dumps({**MANIFEST, "schema": 99}))
    assert "schema 99" in checks.check_manifest(live, path).error


def test_report_fails_with_the_first_failing_sentence():
    report = checks.Report(checks=[checks.Check("python", True, "3.11"), checks.Check("java", False, "x", "no Java."),
                                   checks.Check("spark", False, "y", "no Spark.")])
    assert not report.ok and report.failure() == "no Java."
    assert report.render().splitlines()[1].startswith("FAIL  java")
    assert report.to_wire()["error"] == "no Java."


def test_spark_fails_on_a_connector_jar_it_cannot_read(tmp_path, monkeypatch):
    (tmp_path / "spark-core.jar").write_bytes(b"PK")
    (tmp_path / ".tfscore-jars").write_text("hadoop-aws-3.5.0.jar\n")  # installed, then lost (or unreadable)
    monkeypatch.setattr(checks, "spark_jars", lambda: tmp_path)
    check = checks.check_spark(MANIFEST, run_jvm=False)
    assert check.ok is False
    assert check.error.startswith(f"Spark's jars hadoop-aws-3.5.0.jar in {tmp_path} cannot be read by uid")
    (tmp_path / "hadoop-aws-3.5.0.jar").write_bytes(b"PK")
    assert checks.check_spark(MANIFEST, run_jvm=False).ok is True
