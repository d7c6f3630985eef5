# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
# Shared settings for the single-node cluster harness (sourced by build.sh, up.sh, down.sh, env.sh).
# Everything binary or generated lives under $TFSCORE_CACHE, never in the repo.

# ---- pinned versions -------------------------------------------------------------------------------------------------
K8S_VERSION=${K8S_VERSION:-v1.33.13}         # k8s.io/kubernetes; staging twins are v0.<minor>.<patch>
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}        # go.etcd.io/etcd/server/v3 (the one k8s $K8S_VERSION itself pins)
HELM_VERSION=${HELM_VERSION:-v3.18.6}        # helm.sh/helm/v3 (built against the same k8s.io/* v0.33 modules)
KUEUE_VERSION=${KUEUE_VERSION:-v0.17.0}      # sigs.k8s.io/kueue (kueue.sh; optional, not started by up.sh)

export PATH=/usr/local/go/bin:$PATH
TFSCORE_CACHE=${TFSCORE_CACHE:-$HOME/.cache/tfscore}
K8S_HOME=$TFSCORE_CACHE/k8s/$K8S_VERSION     # wrapper module (src/) and binaries (bin/)
K8S_BIN=$K8S_HOME/bin
K8S_SRC=$K8S_HOME/src
GO_HOME=$TFSCORE_CACHE/go                    # GOMODCACHE and GOCACHE for this harness
export GOMODCACHE=${TFSCORE_GOMODCACHE:-$GO_HOME/mod}
export GOCACHE=${TFSCORE_GOCACHE:-$GO_HOME/build}
export GOFLAGS=-mod=mod
export GOTOOLCHAIN=local

# ---- runtime state ---------------------------------------------------------------------------------------------------
STATE=${TFSCORE_CLUSTER_STATE:-$TFSCORE_CACHE/cluster/state}
PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids
KUBECONFIG_FILE=$STATE/kubeconfig
WELL_KNOWN=$TFSCORE_CACHE/cluster/kubeconfig.path   # holds the path of the current kubeconfig

# Non-default ports (etcd's 2379/2380 + 14000, the API server's 6443 + 10000, the others' defaults + 6000) so a system
# Kubernetes or etcd on this host does not clash, and all below the
# kernel's ephemeral range (ip_local_port_range, 32768-60999): there any outgoing connection (the API server's to etcd,
# a watch) may hold the port as its local end, and a listener then fails with EADDRINUSE for as long as it lives (a CI
# run lost its kubelet /healthz that way). hack/s3 picks its ports in 20000-31999; tiers use 16348-19999.
ETCD_CLIENT_PORT=${TFSCORE_ETCD_PORT:-16379}
ETCD_PEER_PORT=${TFSCORE_ETCD_PEER_PORT:-16380}
APISERVER_PORT=${TFSCORE_APISERVER_PORT:-16443}
KCM_PORT=${TFSCORE_KCM_PORT:-16257}
SCHEDULER_PORT=${TFSCORE_SCHEDULER_PORT:-16259}
KUBELET_PORT=${TFSCORE_KUBELET_PORT:-16250}
KUBELET_HEALTHZ_PORT=${TFSCORE_KUBELET_HEALTHZ_PORT:-16248}
PROXY_HEALTHZ_PORT=${TFSCORE_PROXY_HEALTHZ_PORT:-16256}
PROXY_METRICS_PORT=${TFSCORE_PROXY_METRICS_PORT:-16249}
# Kueue (kueue.sh): its defaults 9443 / 8081 / 8443 + 6000, all on loopback.
KUEUE_WEBHOOK_PORT=${TFSCORE_KUEUE_WEBHOOK_PORT:-15443}
KUEUE_HEALTH_PORT=${TFSCORE_KUEUE_HEALTH_PORT:-14081}
KUEUE_METRICS_PORT=${TFSCORE_KUEUE_METRICS_PORT:-14443}

SERVICE_CIDR=${TFSCORE_SERVICE_CIDR:-10.96.0.0/16}
SERVICE_IP=10.96.0.1                        # first address of SERVICE_CIDR: the `kubernetes` Service
POD_CIDR=${TFSCORE_POD_CIDR:-10.244.0.0/24}
NODE_NAME=${TFSCORE_NODE_NAME:-tfscore-node}

CONTAINERD_DIR=$STATE/containerd
CONTAINERD_SOCK=$CONTAINERD_DIR/containerd.sock
# unix socket paths are limited to 108 bytes: a deep state dir gets its socket under /run instead
((${#CONTAINERD_SOCK} <= 100)) || CONTAINERD_SOCK=/run/tfscore-$(echo "$STATE" | sha256sum | cut -c1-12)/containerd.sock
PAUSE_IMAGE=localhost/tfscore/pause:3.10.1    # built from build/pause/linux/pause.c of k8s.io/kubernetes
ECHO_IMAGE=localhost/tfscore/echo:1          # tools/tfscore-echo, the smoke-test server

log() { printf '[cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Host address that pods can reach (the apiserver advertises it; the node reports it).
host_ip() {
  if [[ -n ${TFSCORE_NODE_IP:-} ]]; then echo "$TFSCORE_NODE_IP"; return; fi
  local ip
  ip=$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  [[ -n $ip ]] || ip=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1)
  [[ -n $ip ]] || ip=127.0.0.1
  echo "$ip"
}

# ---- process bookkeeping: one pid file per component, $PIDS/<name>.pid -------------------------------------------------
# A pid counts as ours only while /proc/<pid>/exe still is the binary we started (guards against pid reuse).
running() { # name -> 0 when its recorded process is alive
  local f=$PIDS/$1.pid pid exe
  [[ -f $f ]] || return 1
  pid=$(cat "$f"); exe=$(cat "$PIDS/$1.exe" 2>/dev/null || true)
  [[ -n $pid && -d /proc/$pid ]] || return 1
  [[ -z $exe || $(readlink "/proc/$pid/exe" 2>/dev/null) == "$exe" ]]
}

start() { # name binary args...   (detached, own session, log in $LOGS/<name>.log)
  local name=$1 bin=$2; shift 2
  if running "$name"; then log "$name already running (pid $(cat "$PIDS/$name.pid"))"; return 0; fi
  mkdir -p "$LOGS" "$PIDS"
  # fd 9 is the caller's flock: the daemon must not inherit (and so hold) it.
  setsid "$bin" "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$PIDS/$name.pid"
  readlink -f "$bin" > "$PIDS/$name.exe"
  log "started $name (pid $!, log $LOGS/$name.log)"
}

stop() { # name [timeout_s]: SIGTERM, then SIGKILL after the timeout; removes the pid file
  local name=$1 timeout=${2:-15} pid i
  if running "$name"; then
    pid=$(cat "$PIDS/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    if [[ -d /proc/$pid ]]; then log "$name (pid $pid) ignored SIGTERM; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
    for ((i = 0; i < 50; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    log "stopped $name (pid $pid)"
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.exe"
}

# Config files are rewritten only when their content changes: kube-proxy exits when its config file is touched.
write_if_changed() { # file < content
  local f=$1 tmp
  tmp=$(mktemp "$f.XXXXXX")
  cat > "$tmp"
  if cmp -s "$tmp" "$f"; then rm -f "$tmp"; else mv -f "$tmp" "$f"; fi
}

wait_for() { # description timeout_s command...
  local what=$1 timeout=$2 t0=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - t0 >= timeout)); then log "timed out after ${timeout}s waiting for $what"; return 1; fi
    sleep 0.25
  done
}
