#!/usr/bin/env bash
# images/build.sh runtime|runtime-gpu|operator — build a tfscore image unless an identical one exists; print its name.
#
# The build context is staged from the working tree (only what the image needs: pyproject.toml, README.md, operator/,
# the lock files incl. requirements/jars.lock, hack/install-jars.sh, images/), and the image is
# tagged with a hash of that context, the base image's id and the variant: an unchanged image is found by its tag
# and not rebuilt. It is also tagged <name>:<tfscore version>.
#
# Environment:
#   ENGINE        podman or docker (default: whichever works, podman first)
#   BASE_IMAGE    default: with podman, the debootstrap base from hack/podman-setup.sh (no registry here); with docker,
#                 images/Dockerfile's digest-pinned debian:bookworm-slim
#   HOST_CA       CA bundle mounted for pip during podman builds (default /etc/ssl/certs/ca-certificates.crt)
#   FORCE=1       rebuild even when the tag exists
#   KEEP          how many content-hash tags of the image to keep (default 3; older ones are removed)
#   TFSCORE_CACHE staging area (default ~/.cache/tfscore)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${TFSCORE_CACHE:-$HOME/.cache/tfscore}"
kind="${1:?usage: images/build.sh runtime|runtime-gpu|operator}"
log() { echo "images/build.sh: $*" >&2; }

case "$kind" in
  runtime)     target=runtime;  lock=requirements/runtime.lock ;;
  runtime-gpu) target=runtime;  lock=requirements/runtime-gpu.lock ;;
  operator)    target=operator; lock=requirements/operator.lock ;;
  *) log "unknown image $kind (runtime, runtime-gpu or operator)"; exit 2 ;;
esac
name="localhost/tfscore/$kind"

engine="${ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null && podman info >/dev/null 2>&1; then engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
  else log "neither podman nor docker works here (hack/podman-setup.sh installs podman)"; exit 3
  fi
fi

build_args=()
if [ -z "${BASE_IMAGE:-}" ] && [ "$engine" = podman ]; then
  BASE_IMAGE="$(bash "$ROOT/hack/podman-setup.sh")"
fi
if [ -n "${BASE_IMAGE:-}" ]; then
  build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  base_id="$("$engine" image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || echo "$BASE_IMAGE")"
else
  base_id="$(sed -n 's/^ARG BASE_IMAGE=//p' "$ROOT/images/Dockerfile")"
fi

# Stage the context: exactly the files images/Dockerfile COPYs.
ctx="$CACHE/image-context/$kind"
rm -rf "$ctx" && mkdir -p "$ctx"
tar -C "$ROOT" -cf - --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
  pyproject.toml README.md operator/tfscore requirements/build.lock "$lock" requirements/jars.lock hack/install-jars.sh \
  images/Dockerfile images/common images/runtime |
  tar -C "$ctx" -xf -
hash="$( (cd "$ctx" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
          echo "kind=$kind target=$target lock=$lock base=$base_id") | sha256sum | cut -c1-12)"
ref="$name:$hash"
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/operator/tfscore/__init__.py")"

if [ "${FORCE:-0}" != 1 ] && "$engine" image inspect "$ref" >/dev/null 2>&1; then
  log "$ref is up to date"
else
  build_args+=(--build-arg "REQUIREMENTS=$lock" --build-arg "IMAGE_REF=$ref")
  if [ "$engine" = podman ]; then
    ca="${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}"
    if [ -s "$ca" ]; then
      build_args+=(--volume "$ca:/etc/ssl/certs/host-ca.crt:ro" --build-arg PIP_CERT=/etc/ssl/certs/host-ca.crt)
    fi
    build_args+=(--layers)
  fi
  log "building $ref with $engine (base ${BASE_IMAGE:-from the Dockerfile})"
  start=$SECONDS
  "$engine" build --network host -f "$ctx/images/Dockerfile" --target "$target" "${build_args[@]}" -t "$ref" "$ctx" >&2
  log "built $ref in $((SECONDS - start)) s"
fi
"$engine" tag "$ref" "$name:$version"
# Disk hygiene: keep the newest KEEP content-hash tags of this image (an image still in use is not removed).
"$engine" images --filter "reference=$name" --format '{{.CreatedAt}}|{{.Repository}}:{{.Tag}}' |
  grep -E ":[0-9a-f]{12}$" | sort -r | tail -n +"$((${KEEP:-3} + 1))" | cut -d'|' -f2 | { grep -vx "$ref" || true; } |
  while read -r old; do "$engine" rmi "$old" >/dev/null 2>&1 || true; done
echo "$ref"
