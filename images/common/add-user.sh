#!/bin/sh
# add-user.sh — the numeric non-root user every tfscore container runs as (uid/gid 1000, the operator's default
# TFSCORE_RUN_AS_USER), with the home directory pods mount an emptyDir on.
set -eu
groupadd --gid 1000 tfscore
useradd --uid 1000 --gid 1000 --home-dir /home/tfscore --create-home --shell /usr/sbin/nologin tfscore
