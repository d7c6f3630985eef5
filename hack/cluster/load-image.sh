#!/usr/bin/env bash
# Import images into the harness's containerd (namespace k8s.io) so pods can use them with imagePullPolicy: Never or
# IfNotPresent (no registry here). Each argument is an image archive (docker-archive or OCI tar) or a podman image name.
#   hack/cluster/load-image.sh localhost/tfscore-runtime:dev build/operator.tar
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
(($# > 0)) || die "usage: $0 IMAGE-or-TAR..."
running containerd || die "containerd of the harness is not running: start it with hack/cluster/up.sh node"
for ref in "$@"; do
  if [[ -f $ref ]]; then
    ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --all-platforms "$ref" >&2
  else
    tmp=$(mktemp -d)
    podman save --format docker-archive -o "$tmp/image.tar" "$ref" >&2
    ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --all-platforms "$tmp/image.tar" >&2
    rm -rf "$tmp"
  fi
  log "imported $ref"
done
