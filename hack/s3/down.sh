#!/usr/bin/env bash
# Stop the SeaweedFS that up.sh started from a state dir, by its pid file, and check none of its ports still listens.
# Usage: down.sh [--state DIR] [--purge]     --purge also deletes the state dir (data, config, logs).
# Safe to call twice, or on a state dir that never ran.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

purge=0
while (($#)); do
  case $1 in
    --state) S3_STATE=${2:?--state needs a directory}; shift 2 ;;
    --purge) purge=1; shift ;;
    *) die "usage: $0 [--state DIR] [--purge]" ;;
  esac
done
[[ -d $S3_STATE ]] || { log "no state dir $S3_STATE: nothing to stop"; exit 0; }
S3_STATE=$(cd "$S3_STATE" && pwd)
s3_paths

exec 9>"$S3_STATE/.up.lock"
flock 9
stop weed 30
running weed && die "weed still running (pid $(cat "$PIDS/weed.pid"))"

if [[ -f $S3_STATE/ports ]]; then
  for p in $(cat "$S3_STATE/ports"); do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
      ss -Hltnp "sport = :$p" >&2 || true
      die "port $p of $S3_STATE still listens"
    fi
    rm -f "/tmp/seaweedfs-"*"-grpc-$p.sock"   # weed's hard-coded gRPC sockets, should one be left behind
  done
fi   # the ports file stays: up.sh reuses those ports when they are free
rm -f "$S3_ENV_FILE"
rm -rf "$S3_SOCK_DIR"

if ((purge)); then
  log "purging $S3_STATE"
  rm -rf "$S3_STATE"
fi
log "s3 down"
