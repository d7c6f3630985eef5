#!/bin/sh
# setup-os.sh — the first layer of every tfscore image: Debian's bookworm, bookworm-updates and bookworm-security
# sources, no documentation/manual pages/translations (now or from later packages), then the pinned ca-certificates and
# python3.11.
set -eu
here="$(dirname "$0")"
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
cp "$here/debian.sources" /etc/apt/sources.list.d/debian.sources
cp "$here/dpkg-slim.cfg" /etc/dpkg/dpkg.cfg.d/tfscore-slim
find /usr/share/doc /usr/share/man /usr/share/info /usr/share/locale /usr/share/lintian -mindepth 1 \
  ! -name copyright ! -name locale.alias ! -type d -delete 2>/dev/null || true
"$here/apt-install.sh" ca-certificates python3.11
