#!/usr/bin/env bash
# Stop everything up.sh started, by pid file, in reverse order; pods are stopped through the CRI first so their
# network namespaces, veths and IPAM leases are released. Leaves state (certs, etcd data, images) for a fast restart.
# Usage: down.sh [--purge]     --purge also deletes the state dir (certs, etcd data, containerd images).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

[[ -d $STATE ]] || { log "no state dir $STATE: nothing to stop"; exit 0; }

# Kueue (kueue.sh) first, while the API server can still take its webhook configurations away.
if running kueue; then bash "$HERE/kueue.sh" down || stop kueue; fi
stop kube-scheduler
stop kube-controller-manager
# shellcheck source=node.sh
source "$HERE/node.sh"
node_down
stop kube-apiserver 30
stop etcd

# Anything we started must be gone, and nothing may listen on our ports.
left=()
for f in "$PIDS"/*.pid; do [[ -e $f ]] || continue; n=$(basename "$f" .pid); running "$n" && left+=("$n"); done
((${#left[@]} == 0)) || die "still running: ${left[*]}"
ports=("$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KUBELET_PORT"
  "$KUBELET_HEALTHZ_PORT" "$PROXY_HEALTHZ_PORT" "$PROXY_METRICS_PORT")
pat=$(IFS='|'; echo "${ports[*]}")
if ss -Hltn 2>/dev/null | awk '{print $4}' | grep -Eq ":($pat)\$"; then
  ss -Hltnp | grep -E ":($pat) " >&2 || true
  die "something still listens on a harness port"
fi

if [[ ${1:-} == --purge ]]; then
  log "purging $STATE"
  rm -rf "$STATE"
fi
log "cluster down"
