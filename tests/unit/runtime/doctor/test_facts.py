"""Manifest facts and comparison: every field compared, differences worded in one sentence (runtime/doctor/facts.py)."""

from __future__ import annotations

import pytest

from tfscore.runtime.doctor import facts

from .manifests import MANIFEST, OTHER


class FakeDist:
    def __init__(self, wheel):
        self.wheel = wheel

    def read_text(self, name):
        return self.wheel if name == "WHEEL" else None


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


@pytest.mark.parametrize("tag,need", [
    ("cp311-cp311-manylinux_2_27_x86_64", (2, 27)), ("cp311-cp311-manylinux2014_x86_64", (2, 17)),
    ("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64", (2, 17)), ("py3-none-any", None), (None, None),
])
def test_manylinux_glibc(tag, need):
    assert facts.manylinux_glibc(tag) == need


def test_wheel_tag_reads_the_wheel_metadata():
    dist = FakeDist("Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_27_x86_64\n")
    assert facts.wheel_tag(dist) == "cp311-cp311-manylinux_2_27_x86_64"
    assert facts.wheel_tag(None) is None


@pytest.mark.parametrize("text,major", [
    ("17.0.21.1+2-1-deb12u1-Debian", 17), ("1.8.0_292-b10", 8), ("11.0.2", 11), ("21", 21), (None, None), ("", None),
])
def test_java_major(text, major):
    assert facts.java_major(text) == major


def test_labelled_takes_the_image_names_from_the_environment():
    out = facts.labelled({"python": "3.11.2"}, {"TFSCORE_IMAGE": "r:1", "TFSCORE_BASE_IMAGE": "b"})
    assert out == {"image": "r:1", "base": "b", "python": "3.11.2"}
