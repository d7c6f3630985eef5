"""tfscore doctor's pure logic: manifest comparison (every field), the one-sentence messages, and each check's verdict on
given facts. The real checks run in the image tier (tests/image)."""

from __future__ import annotations

import json

import pytest

from tfscore.runtime.doctor import checks, executors, facts
from tfscore.runtime.errors import TfscoreError

MANIFEST = {
    "schema": 1,
    "image": "localhost/tfscore/runtime:aaaaaaaaaaaa",
    "base": "localhost/debian:bookworm",
    "tfscore": "0.1.0",
    "tfscoreSource": "0123456789abcdef",
    "python": "3.11.2",
    "glibc": "2.36",
    "machine": "x86_64",
    "tensorflow": "tensorflow-cpu 2.21.0",
    "tensorflowWheel": "cp311-cp311-manylinux_2_27_x86_64",
    "tensorflowBuild": "cpu",
    "java": "17.0.21.1+2-1-deb12u1-Debian",
    "spark": "4.3.0",
    "pyspark": "4.3.0",
    "numpy": "2.4.6",
    "pyarrow": "26.0.1",
    "pandas": "2.3.3",
    "packages": "12e4fe685ae21b70",
}
OTHER = {
    "image": "localhost/tfscore/runtime:bbbbbbbbbbbb",
    "tfscore": "0.2.0",
    "tfscoreSource": "fedcba9876543210",
    "python": "3.11.9",
    "glibc": "2.28",
    "machine": "aarch64",
    "tensorflow": "tensorflow-cpu 2.20.0",
    "tensorflowWheel": "cp311-cp311-manylinux_2_17_x86_64",
    "tensorflowBuild": "cuda 12.5.1/cudnn 9",
    "java": "21.0.5+11-Debian",
    "spark": "4.0.1",
    "pyspark": "4.0.1",
    "numpy": "1.26.4",
    "pyarrow": "15.0.0",
    "pandas": "2.2.0",
    "packages": "0000000000000000",
}


def test_every_field_has_a_different_value_to_test():
    assert set(OTHER) == set(facts.FIELDS)


@pytest.mark.parametrize("field", list(facts.FIELDS))
def test_compare_reports_exactly_the_differing_field(field):
    other = {**MANIFEST, field: OTHER[field]}
    diffs = facts.compare(MANIFEST, other)
    assert [(d.field, d.expected, d.actual) for d in diffs] == [(field, MANIFEST[field], OTHER[field])]
    assert diffs[0].label == facts.FIELDS[field]


@pytest.mark.parametrize("field", [f for f in facts.FIELDS if f != "image"])
def test_executor_message_names_executor_host_both_images_and_the_field(field):
    reported = {**MANIFEST, "image": OTHER["image"], field: OTHER[field]}
    diffs = facts.compare(MANIFEST, reported)
    text = facts.executor_mismatch("3", "job-a1-exec-3", MANIFEST, reported, diffs)
    assert text.startswith("executor 3 on job-a1-exec-3 runs localhost/tfscore/runtime:bbbbbbbbbbbb")
    assert "the driver runs localhost/tfscore/runtime:aaaaaaaaaaaa" in text
    assert facts.FIELDS[field] in text and str(OTHER[field]) in text and str(MANIFEST[field]) in text
    assert "spark.kubernetes.container.image" in text  # the fix
    assert "\n" not in text


def test_executor_message_field_difference_under_the_same_image_label():
    reported = {**MANIFEST, "tensorflow": OTHER["tensorflow"], "numpy": OTHER["numpy"]}
    text = facts.executor_mismatch("1", "h", MANIFEST, reported, facts.compare(MANIFEST, reported))
    assert ("executor 1 on h runs localhost/tfscore/runtime:aaaaaaaaaaaa with TensorFlow tensorflow-cpu 2.20.0, but the "
            "driver runs localhost/tfscore/runtime:aaaaaaaaaaaa with TensorFlow tensorflow-cpu 2.21.0 (and 1 more "
            "field)") in text


def test_unlabelled_images_and_missing_values_read_plainly():
    driver = {k: v for k, v in MANIFEST.items() if k != "image"}
    reported = {**driver, "java": None}
    text = facts.executor_mismatch("2", "h", driver, reported, facts.compare(driver, reported))
    assert "runs an unlabelled image with Java nothing, but the driver runs an unlabelled image with Java 17.0.21" in text


def test_compare_ignores_labels_when_asked_and_never_compares_the_base():
    other = {**MANIFEST, "image": OTHER["image"], "base": "docker.io/library/debian:bookworm-slim@sha256:00"}
    assert [d.field for d in facts.compare(MANIFEST, other)] == ["image"]
    assert facts.compare(MANIFEST, other, ignore=facts.LABELS) == []


def test_compare_reports_fields_known_to_one_side_only():
    diffs = facts.compare(MANIFEST, {**MANIFEST, "cudnn": "9"})
    assert [(d.field, d.expected, d.actual) for d in diffs] == [("cudnn", None, "9")]


def test_drift_message():
    live = {**MANIFEST, "numpy": "1.26.4", "pyarrow": "15.0.0"}
    text = facts.drift_message("/opt/tfscore/image-manifest.json", MANIFEST,
                                facts.compare(MANIFEST, live, ignore=facts.LABELS))
    assert text.startswith("this environment differs from the image manifest /opt/tfscore/image-manifest.json of "
                           "localhost/tfscore/runtime:aaaaaaaaaaaa: numpy is 1.26.4 here but 2.4.6 in the manifest "
                           "(and 1 more)")
    assert "run the image unmodified" in text


# ---------------------------------------------------------------- check_executors (a stand-in SparkContext)


class FakeContext:
    """parallelize(...).mapPartitions(f).collect(): runs f once per partition, each "on" the executor of `placement`."""

    def __init__(self, placement, monkeypatch):
        self.placement, self.monkeypatch = placement, monkeypatch
        self.defaultParallelism = len(placement) // 2

    def parallelize(self, data, slices):
        assert slices == len(self.placement)
        return self

    def mapPartitions(self, fn):  # noqa: N802 - Spark's name
        self.fn = fn
        return self

    def collect(self):
        out = []
        for executor, manifest, drift in self.placement:
            self.monkeypatch.setenv("SPARK_EXECUTOR_ID", executor)
            self.monkeypatch.setenv("SPARK_EXECUTOR_POD_NAME", f"job-a1-exec-{executor}")
            self.monkeypatch.setattr(executors, "_worker_manifest", lambda m=manifest, d=drift: (m, d))
            out.extend(self.fn(iter([0])))
        return out


class FakeSpark:
    def __init__(self, sc):
        self.sparkContext = sc


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr(executors.time, "sleep", lambda s: None)


def test_check_executors_passes_when_all_match(monkeypatch, no_sleep):
    sc = FakeContext([("1", MANIFEST, None), ("2", MANIFEST, None)] * 2, monkeypatch)
    executors.check_executors(FakeSpark(sc), MANIFEST)


def test_check_executors_names_the_executor_that_differs(monkeypatch, no_sleep):
    odd = {**MANIFEST, "image": OTHER["image"], "tensorflow": OTHER["tensorflow"]}
    sc = FakeContext([("1", MANIFEST, None), ("10", MANIFEST, None), ("2", odd, None), ("2", odd, None)], monkeypatch)
    with pytest.raises(TfscoreError) as err:
        executors.check_executors(FakeSpark(sc), MANIFEST)
    text = str(err.value)
    assert text.startswith("executor 2 on job-a1-exec-2 runs localhost/tfscore/runtime:bbbbbbbbbbbb but the driver "
                           "runs localhost/tfscore/runtime:aaaaaaaaaaaa (TensorFlow tensorflow-cpu 2.20.0 vs "
                           "tensorflow-cpu 2.21.0)")


def test_check_executors_reports_an_executor_drifting_from_its_own_manifest(monkeypatch, no_sleep):
    sc = FakeContext([("1", MANIFEST, None), ("2", MANIFEST, "this environment differs from …")], monkeypatch)
    with pytest.raises(TfscoreError, match=r"^executor 2 on job-a1-exec-2: this environment differs"):
        executors.check_executors(FakeSpark(sc), MANIFEST)


def test_check_executors_turns_a_failed_report_into_one_sentence(monkeypatch):
    class Broken(FakeContext):
        def collect(self):
            raise RuntimeError("An error occurred while calling o42.collectAndServe.\n: org.apache.spark.SparkException: "
                               "Job aborted due to stage failure: org.apache.spark.api.python.PythonException: "
                               "Traceback (most recent call last):\n  File \"worker.py\", line 1\n"
                               "ModuleNotFoundError: No module named 'tfscore'\n\tat org.apache.spark.api.python")

    with pytest.raises(TfscoreError) as err:
        executors.check_executors(FakeSpark(Broken([("1", MANIFEST, None)] * 2, monkeypatch)), MANIFEST)
    assert str(err.value) == ("the executors could not report their image manifest (ModuleNotFoundError: No module "
                              "named 'tfscore'): run them from the driver's tfscore runtime image "
                              "(spark.kubernetes.container.image) with PYSPARK_PYTHON=/opt/tfscore/venv/bin/python")


@pytest.mark.parametrize("text,cause", [
    ("java.io.IOException: Cannot run program \"/work/.venv/bin/python\": error=2, No such file or directory\n\tat x",
     'Cannot run program "/work/.venv/bin/python": error=2, No such file or directory'),
    ("Job aborted\nmore", "Job aborted"),
])
def test_spark_failure_cause(text, cause):
    assert executors.spark_failure(text) == cause


@pytest.mark.parametrize("master,env,wanted", [
    ("local[*]", {}, False), ("local[2,4]", {"TFSCORE_CHECK_EXECUTORS": "1"}, True),
    ("k8s://https://kubernetes.default.svc:443", {}, True), ("spark://m:7077", {"TFSCORE_CHECK_EXECUTORS": "0"}, True),
])
def test_executor_check_wanted(master, env, wanted):
    assert executors.executor_check_wanted(master, env) is wanted


# ---------------------------------------------------------------- the checks' verdicts on given facts


@pytest.mark.parametrize("tag,need", [
    ("cp311-cp311-manylinux_2_27_x86_64", (2, 27)), ("cp311-cp311-manylinux2014_x86_64", (2, 17)),
    ("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64", (2, 17)), ("py3-none-any", None), (None, None),
])
def test_manylinux_glibc(tag, need):
    assert facts.manylinux_glibc(tag) == need


class FakeDist:
    def __init__(self, wheel):
        self.wheel = wheel

    def read_text(self, name):
        return self.wheel if name == "WHEEL" else None


def test_wheel_tag_reads_the_wheel_metadata():
    dist = FakeDist("Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_27_x86_64\n")
    assert facts.wheel_tag(dist) == "cp311-cp311-manylinux_2_27_x86_64"
    assert facts.wheel_tag(None) is None


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


CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 {extra}\n\n"


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


@pytest.mark.parametrize("text,major", [
    ("17.0.21.1+2-1-deb12u1-Debian", 17), ("1.8.0_292-b10", 8), ("11.0.2", 11), ("21", 21), (None, None), ("", None),
])
def test_java_major(text, major):
    assert facts.java_major(text) == major


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


def test_driver_manifest_fails_on_drift_and_falls_back_to_live_facts(tmp_path, monkeypatch):
    live = {k: v for k, v in MANIFEST.items() if k not in facts.LABELS}
    monkeypatch.setattr(executors, "facts", lambda: dict(live))
    assert executors.driver_manifest(tmp_path / "absent.json") == live
    path = tmp_path / "m.json"
    facts.write_manifest(path, MANIFEST)
    assert executors.driver_manifest(path) == MANIFEST
    monkeypatch.setattr(executors, "facts", lambda: {**live, "java": "21.0.5"})
    with pytest.raises(TfscoreError, match="Java is 21.0.5 here but 17.0.21.1"):
        executors.driver_manifest(path)


def test_labelled_takes_the_image_names_from_the_environment():
    out = facts.labelled({"python": "3.11.2"}, {"TFSCORE_IMAGE": "r:1", "TFSCORE_BASE_IMAGE": "b"})
    assert out == {"image": "r:1", "base": "b", "python": "3.11.2"}


def test_report_fails_with_the_first_failing_sentence():
    report = checks.Report(checks=[checks.Check("python", True, "3.11"), checks.Check("java", False, "x", "no Java."),
                                   checks.Check("spark", False, "y", "no Spark.")])
    assert not report.ok and report.failure() == "no Java."
    assert report.render().splitlines()[1].startswith("FAIL  java")
    assert report.to_wire()["error"] == "no Java."
