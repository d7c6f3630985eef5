#!/bin/sh
# make-venv.sh BUILD_LOCK LOCK — create /opt/tfscore/venv from hash-locked requirements. The build tools (BUILD_LOCK:
# setuptools, wheel) go in first, so sdists in LOCK (pyspark has no wheel) build without fetching unpinned tools.
# PIP_CERT (a build arg): a CA bundle for pip behind a TLS-intercepting proxy, mounted for the build only.
set -eu
build_lock="$1"
lock="$2"
venv=/opt/tfscore/venv
if [ -n "${PIP_CERT:-}" ]; then set -- --cert "$PIP_CERT"; else set --; fi
python3.11 -m venv "$venv"
"$venv/bin/pip" install --quiet --no-cache-dir --require-hashes --only-binary=:all: "$@" -r "$build_lock"
"$venv/bin/pip" install --quiet --no-cache-dir --require-hashes --no-build-isolation "$@" -r "$lock"
