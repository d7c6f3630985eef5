#!/usr/bin/env bash
# Make podman usable on this kind of host, idempotently, and provide the offline base image.
#   1. apt packages: podman, runc, debootstrap (installed only when missing);
#   2. /etc/containers/containers.conf: runc + cgroupfs (crun fails on this hybrid cgroup host) and nofile/nproc ulimits
#      of 4096 (the host's rlimits cannot be raised);
#   3. base image localhost/debian:bookworm: debootstrap --variant=minbase, cached as a tarball outside the repo in
#      ${TFSCORE_CACHE:-~/.cache/tfscore}/debian-bookworm.tar, then `podman import`.
# Prints the base image reference on stdout (everything else goes to stderr).
set -euo pipefail

CACHE="${TFSCORE_CACHE:-$HOME/.cache/tfscore}"
BASE_REF="${TFSCORE_BASE_REF:-localhost/debian:bookworm}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TARBALL="$CACHE/debian-$SUITE.tar"
CONF=/etc/containers/containers.conf

log() { echo "podman-setup: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. packages
missing=()
for pkg in podman runc debootstrap; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

# 2. containers.conf (rewritten only when it differs; a foreign file is kept as .orig once)
want="$(cat <<'CONFEOF'
# Written by tfscore hack/podman-setup.sh.
[containers]
# The host's hard rlimits cannot be raised: ask for what it allows.
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
# crun fails on this hybrid cgroup host; runc with cgroupfs works.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONFEOF
)"
if [ "$(cat "$CONF" 2>/dev/null)" != "$want" ]; then
  as_root mkdir -p "$(dirname "$CONF")"
  if [ -s "$CONF" ] && ! grep -q 'tfscore hack/podman-setup.sh' "$CONF" && [ ! -e "$CONF.orig" ]; then
    as_root cp "$CONF" "$CONF.orig"
    log "kept the previous $CONF as $CONF.orig"
  fi
  printf '%s\n' "$want" | as_root tee "$CONF" >/dev/null
  log "wrote $CONF"
fi

# 3. the offline base image
if podman image exists "$BASE_REF"; then
  log "base image $BASE_REF present"
else
  if [ ! -s "$TARBALL" ]; then
    mkdir -p "$CACHE"
    root="$(mktemp -d "$CACHE/debootstrap.XXXXXX")"
    trap 'as_root rm -rf "$root"' EXIT
    log "debootstrap --variant=minbase $SUITE (about 30 s)"
    start=$SECONDS
    as_root debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { log "debootstrap failed; see $CACHE/debootstrap.log"; tail -5 "$CACHE/debootstrap.log" >&2; exit 1; }
    # No host leftovers in the image: apt lists and caches are refetched by the image build anyway.
    as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
    as_root tar --numeric-owner -C "$root" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    log "debootstrap done in $((SECONDS - start)) s -> $TARBALL"
  fi
  podman import --quiet --change 'CMD ["/bin/bash"]' "$TARBALL" "$BASE_REF" >/dev/null
  log "imported $BASE_REF from $TARBALL"
fi
echo "$BASE_REF"
