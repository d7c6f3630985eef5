#!/usr/bin/env bash
# Spark needs a Java 17+ runtime. Install Debian's when none is on PATH.
set -euo pipefail
if command -v java >/dev/null 2>&1; then exit 0; fi
echo "installing openjdk-17-jre-headless (Spark needs Java)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq openjdk-17-jre-headless
