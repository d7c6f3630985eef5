#!/usr/bin/env bash
# Import images into the harness's containerd (namespace k8s.io) so pods can use them with imagePullPolicy: Never or
# IfNotPresent (no registry here). Each argument is an image archive (docker-archive or OCI tar) or a podman image name.
#   hack/cluster/load-image.sh localhost/tfscore-runtime:dev build/operator.tar
#   hack/cluster/load-image.sh --pin localhost/tfscore-runtime:dev     # no import: the node has it already
#
# For each podman image name, stdout gets one line: the same image by digest, REPOSITORY@sha256:..., which pods can
# use exactly as they would a registry's digest reference (containerd gets a second name for the image, as a pull by
# digest would give it).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
import=1
if [[ ${1:-} == --pin ]]; then import=0; shift; fi
(($# > 0)) || die "usage: $0 [--pin] IMAGE-or-TAR..."
running containerd || die "containerd of the harness is not running: start it with hack/cluster/up.sh node"
ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# The manifest digest containerd holds for an image name (empty when it has no such image).
digest_of() { ctr_ images ls "name==$1" | awk 'NR > 1 { print $3 }'; }

# NAME (repository:tag) → repository@digest, registered in containerd as a second name of the same image.
pin() {
  local name=$1 repo=$1 digest
  digest=$(digest_of "$name")
  [[ $digest == sha256:* ]] || die "the harness's containerd has no image $name (import it: hack/cluster/load-image.sh $name)"
  [[ ${name##*/} == *:* ]] && repo=${name%:*}
  ctr_ images tag --force "$name" "$repo@$digest" >/dev/null
  echo "$repo@$digest"
}

for ref in "$@"; do
  if ((!import)); then
    pin "$ref"
  elif [[ -f $ref ]]; then
    ctr_ images import --all-platforms "$ref" >&2
    log "imported $ref"
  else
    # Streamed: no 2 GB archive written to disk and read back (containerd skips the layers it already holds).
    podman save --format docker-archive "$ref" | ctr_ images import --all-platforms - >&2
    log "imported $ref"
    pin "$ref"
  fi
done
