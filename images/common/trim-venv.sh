#!/bin/sh
# trim-venv.sh — drop what batch inference never loads from /opt/tfscore/venv (each step only where the package is
# installed: the operator's venv has none of them): TensorFlow's C++ headers (custom-op builds only), test suites, and
# the static symbol tables of TensorFlow's shared libraries (their dynamic symbols stay).
set -eu
sp=/opt/tfscore/venv/lib/python3.11/site-packages
rm -rf "$sp/tensorflow/include" "$sp/pandas/tests" "$sp/pyarrow/tests"
if [ -d "$sp/numpy" ]; then find "$sp/numpy" -depth -type d -name tests -exec rm -rf {} +; fi
if [ -d "$sp/tensorflow" ]; then find "$sp/tensorflow" -type f -name '*.so*' -exec strip --strip-unneeded {} +; fi
