#!/usr/bin/env bash
# Print the running server's contract as KEY=value lines (no quotes; paths contain no spaces), the same lines up.sh
# printed:  export $(hack/s3/env.sh [--state DIR])
# Exits 1 when no server runs from the state dir. `env.sh --node-ip` prints the host address pods on the local
# cluster (hack/cluster, bridge tfscore0) reach the host on: pass it to `up.sh --host` for the e2e tier.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

while (($#)); do
  case $1 in
    --state) S3_STATE=${2:?--state needs a directory}; shift 2 ;;
    --node-ip) host_ip; exit 0 ;;
    *) die "usage: $0 [--state DIR] | --node-ip" ;;
  esac
done
s3_paths
running weed && [[ -f $S3_ENV_FILE ]] || { log "no SeaweedFS runs from $S3_STATE (start it with up.sh)"; exit 1; }
cat "$S3_ENV_FILE"
