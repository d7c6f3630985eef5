# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
# Shared settings for the SeaweedFS S3 test server (sourced by build.sh, up.sh, down.sh, env.sh).
# Reuses the cluster harness's Go environment (GOMODCACHE/GOCACHE under $TFSCORE_CACHE) and its process bookkeeping
# (start/stop/running/wait_for), with pid files and logs in the S3 state dir instead of the cluster's.
HERE_S3=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cluster/lib.sh
source "$HERE_S3/../cluster/lib.sh"

# ---- pinned version --------------------------------------------------------------------------------------------------
# github.com/seaweedfs/seaweedfs has no tagged Go module versions; this pseudo-version is SeaweedFS 4.53 (commit 7506e5f91cd6).
SEAWEEDFS_VERSION=${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
SEAWEEDFS_MODULE=github.com/seaweedfs/seaweedfs
SEAWEEDFS_HOME=$TFSCORE_CACHE/seaweedfs/$SEAWEEDFS_VERSION   # wrapper module (src/) and binary (bin/)
WEED_BIN_DIR=$SEAWEEDFS_HOME/bin
WEED=$WEED_BIN_DIR/weed
WEED_SRC=$SEAWEEDFS_HOME/src

# ---- runtime state (up.sh/down.sh/env.sh: --state DIR or TFSCORE_S3_STATE) -------------------------------------------
S3_STATE=${TFSCORE_S3_STATE:-$TFSCORE_CACHE/s3/state}
S3_HOST=${TFSCORE_S3_HOST:-127.0.0.1}
S3_PORT=${TFSCORE_S3_PORT:-0}               # 0: up.sh picks a free port (kept in the state dir for a restart)
# One static identity (test-only credentials; overridable).
S3_ACCESS_KEY=${TFSCORE_S3_ACCESS_KEY:-tfscore}
S3_SECRET_KEY=${TFSCORE_S3_SECRET_KEY:-tfscore-secret-key}

log() { printf '[s3 %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

s3_paths() { # (re)derive the state layout from $S3_STATE
  LOGS=$S3_STATE/logs
  PIDS=$S3_STATE/pids
  S3_CONFIG=$S3_STATE/s3.json
  S3_ENV_FILE=$S3_STATE/env
  S3_DATA=$S3_STATE/data
  S3_CONF=$S3_STATE/config
  # unix sockets (filer, s3) in the state dir; socket paths are limited to 108 bytes, so a deep dir uses /run
  S3_SOCK_DIR=$S3_STATE/run
  ((${#S3_SOCK_DIR} <= 80)) || S3_SOCK_DIR=/run/tfscore-s3-$(echo "$S3_STATE" | sha256sum | cut -c1-12)
}
s3_paths

weed_present() { # the pinned weed is built (build.sh writes the stamp last; its first word names the version)
  [[ -x $WEED && -f $WEED_BIN_DIR/.weed.stamp && $(cut -d' ' -f1 "$WEED_BIN_DIR/.weed.stamp") == "seaweedfs=$SEAWEEDFS_VERSION" ]]
}
