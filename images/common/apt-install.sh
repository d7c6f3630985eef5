#!/bin/sh
# apt-install.sh PACKAGE... — install Debian packages at the versions pinned in apt-pins.txt (next to this script),
# without recommends, then drop apt's lists and caches so the layer holds only the packages.
set -eu
pins="$(dirname "$0")/apt-pins.txt"
specs=""
for pkg in "$@"; do
  version="$(awk -v p="$pkg" '$1 == p { print $2 }' "$pins")"
  if [ -z "$version" ]; then
    echo "apt-install: $pkg has no pinned version in $pins; add one" >&2
    exit 1
  fi
  specs="$specs $pkg=$version"
done
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package=version list is intended
if ! apt-get install -y -qq --no-install-recommends $specs >/tmp/apt-install.log 2>&1; then
  cat /tmp/apt-install.log >&2
  echo "apt-install: installing$specs failed; if a pinned version is no longer on the mirror, update $pins" >&2
  exit 1
fi
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log /var/log/alternatives.log \
  /tmp/apt-install.log
