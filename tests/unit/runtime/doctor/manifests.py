"""Two image manifests that differ in every field, shared by the doctor tests."""

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
    "keras": "3.15.1",
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
    "keras": "3.10.0",
    "packages": "0000000000000000",
}
