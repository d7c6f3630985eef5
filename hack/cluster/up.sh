#!/usr/bin/env bash
# Start the local single-node Kubernetes harness. Idempotent: components already running are left alone.
# Usage: up.sh [control-plane|node]      (default: node)
#   control-plane: etcd + kube-apiserver + kube-controller-manager (garbage collector on)
#   node:          + kube-scheduler + containerd + kubelet + kube-proxy (bridge CNI), node Ready
# Contract: only logs (stderr); writes $STATE/kubeconfig; exits 0 once the level is ready, non-zero otherwise.
# State (certs, data, logs, pid files) lives in $TFSCORE_CLUSTER_STATE (default $TFSCORE_CACHE/cluster/state).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=pki.sh
source "$HERE/pki.sh"

level=${1:-node}
case $level in control-plane|node) ;; *) die "usage: $0 [control-plane|node]" ;; esac
t_start=$SECONDS

bash "$HERE/build.sh" "$level" >&2
[[ $level == node ]] && bash "$HERE/deps.sh" >&2
command -v openssl >/dev/null && command -v curl >/dev/null || bash "$HERE/deps.sh" >&2

mkdir -p "$STATE" "$LOGS" "$PIDS"
exec 9>"$STATE/.up.lock"
flock 9

HOST_IP=$(host_ip)
ensure_pki "$HOST_IP"
mkdir -p "$(dirname "$WELL_KNOWN")"
echo "$KUBECONFIG_FILE" > "$WELL_KNOWN"

api() { curl -sf --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
  "https://127.0.0.1:$APISERVER_PORT$1"; }
# Called when a component failed its wait: the tail of its log goes into the error either way (CI keeps nothing else).
alive_or_die() {
  tail -n 30 "$LOGS/$1.log" >&2
  running "$1" || die "$1 exited (log: $LOGS/$1.log)"
}

# ---- etcd ------------------------------------------------------------------------------------------------------------
# Plain HTTP on loopback only; fsync off by default (a disposable test cluster: TFSCORE_ETCD_FSYNC=1 turns it on).
etcd_args=(--name tfscore --data-dir "$STATE/etcd"
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT"
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT"
  --initial-cluster "tfscore=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new
  --quota-backend-bytes 2147483648 --log-level warn)
[[ ${TFSCORE_ETCD_FSYNC:-0} == 1 ]] || etcd_args+=(--unsafe-no-fsync)
start etcd "$K8S_BIN/etcd" "${etcd_args[@]}"
wait_for "etcd health" 30 curl -sf --max-time 1 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" || { alive_or_die etcd; die "etcd not healthy"; }

# ---- kube-apiserver --------------------------------------------------------------------------------------------------
start kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --bind-address 0.0.0.0 --secure-port "$APISERVER_PORT" --advertise-address "$HOST_IP" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --profiling=false --v=1
wait_for "kube-apiserver /readyz" 90 api /readyz || { alive_or_die kube-apiserver; die "kube-apiserver not ready"; }
log "kube-apiserver ready on https://127.0.0.1:$APISERVER_PORT"

# ---- kube-controller-manager ----------------------------------------------------------------------------------------
start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
  --controllers '*' --enable-garbage-collector=true --use-service-account-credentials=true \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false --profiling=false --v=1
wait_for "kube-controller-manager /healthz" 60 curl -skf --max-time 1 "https://127.0.0.1:$KCM_PORT/healthz" \
  || { alive_or_die kube-controller-manager; die "kube-controller-manager not healthy"; }
# The default ServiceAccount appears once the controllers run: a cheap end-to-end check of the control plane.
wait_for "default ServiceAccount" 60 api /api/v1/namespaces/default/serviceaccounts/default \
  || die "controller-manager did not create the default ServiceAccount"
log "control plane ready in $((SECONDS - t_start)) s"

if [[ $level == node ]]; then
  # shellcheck source=node.sh
  source "$HERE/node.sh"
  node_up
  log "node ready in $((SECONDS - t_start)) s"
fi
log "export KUBECONFIG=$KUBECONFIG_FILE"
