#!/usr/bin/env bash
# Debian packages the cluster harness needs. Idempotent: apt runs only when something is missing.
set -euo pipefail
PKGS=(containerd runc iptables containernetworking-plugins conntrack openssl podman debootstrap curl iproute2
  util-linux gcc libc6-dev jq)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "[cluster deps] installing: ${missing[*]}" >&2
SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
# The Debian containerd package may start a system containerd; the harness runs its own instance on its own socket.
