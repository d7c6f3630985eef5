# shellcheck shell=bash
# Node level of the harness (sourced by up.sh and down.sh; needs lib.sh): containerd (own instance, own socket, CRI v1,
# runc, cgroupfs), the locally built pause image, bridge CNI, kube-scheduler, kubelet, kube-proxy (iptables mode).

IMAGES_DIR=$K8S_HOME/images
CNI_CONF_DIR=$STATE/cni/net.d
BRIDGE=tfscore0

ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# A one-layer docker-archive image (no registry, no podman): out.tar ref user rootfs-dir entrypoint...
single_layer_image() {
  local out=$1 ref=$2 user=$3 rootfs=$4; shift 4
  local tmp ep diff cfg cfgsha
  tmp=$(mktemp -d)
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name -C "$rootfs" -cf "$tmp/layer.tar" .
  diff=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
  ep=$(printf '"%s",' "$@"); ep="[${ep%,}]"
  cfg="{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"1970-01-01T00:00:00Z\","
  cfg+="\"config\":{\"Entrypoint\":$ep,\"User\":\"$user\",\"WorkingDir\":\"/\"},"
  cfg+="\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff\"]}}"
  printf '%s' "$cfg" > "$tmp/config.json"
  cfgsha=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
  mkdir "$tmp/$diff"; mv "$tmp/layer.tar" "$tmp/$diff/layer.tar"; mv "$tmp/config.json" "$tmp/$cfgsha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfgsha" "$ref" "$diff" > "$tmp/manifest.json"
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp" -cf "$out.tmp" manifest.json "$cfgsha.json" "$diff"
  mv "$out.tmp" "$out"
  rm -rf "$tmp"
}

build_images() {
  mkdir -p "$IMAGES_DIR"
  local pause_src=$GOMODCACHE/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c
  if [[ ! -f $IMAGES_DIR/pause.tar ]]; then
    [[ -f $pause_src ]] || (cd "$K8S_SRC" && go mod download "k8s.io/kubernetes@$K8S_VERSION")
    local root; root=$(mktemp -d)
    gcc -Os -Wall -Werror -static -DVERSION="v3.10.1-tfscore" -o "$root/pause" "$pause_src"
    single_layer_image "$IMAGES_DIR/pause.tar" "$PAUSE_IMAGE" 65535:65535 "$root" /pause
    rm -rf "$root"
    log "built $PAUSE_IMAGE from $pause_src"
  fi
  if [[ ! -f $IMAGES_DIR/echo.tar || $IMAGES_DIR/echo.tar -ot $K8S_BIN/tfscore-echo ]]; then
    local root; root=$(mktemp -d)
    cp "$K8S_BIN/tfscore-echo" "$root/echo"
    single_layer_image "$IMAGES_DIR/echo.tar" "$ECHO_IMAGE" 65532:65532 "$root" /echo
    rm -rf "$root"
    log "built $ECHO_IMAGE"
  fi
}

import_image() { # tar ref
  if ! ctr_ images ls -q | grep -qx "$2"; then
    ctr_ images import --all-platforms "$1" >/dev/null
    log "imported $2 into containerd (namespace k8s.io)"
  fi
}

host_network_up() {
  sysctl -qw net.ipv4.ip_forward=1
  [[ -d /proc/sys/net/bridge ]] || modprobe br_netfilter 2>/dev/null || true
  [[ -d /proc/sys/net/bridge ]] || die "bridge netfilter missing (br_netfilter): Services cannot reach pods on the bridge"
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  # The pod bridge exists before the first pod (the bridge plugin adopts it), and the Service CIDR routes onto it:
  # without a default route, or for a ClusterIP with no endpoints, packets stop on the bridge instead of leaving the
  # machine; kube-proxy's DNAT re-routes the real ones to the pod. (This kernel has no dummy links.)
  local gw=${POD_CIDR%.*/*}.1/${POD_CIDR#*/}
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr show dev "$BRIDGE" | grep -q " ${gw} " || ip addr add "$gw" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE"
  mkdir -p "$CNI_CONF_DIR" "$STATE/cni/ipam"
  write_if_changed "$CNI_CONF_DIR/10-tfscore.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "tfscore",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CNI
}

containerd_up() {
  mkdir -p "$CONTAINERD_DIR" "$(dirname "$CONTAINERD_SOCK")"
  write_if_changed "$CONTAINERD_DIR/config.toml" <<TOML
version = 2
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/run"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  enable_selinux = false
  # This host denies lowering oom_score_adj below 0 (no CAP_SYS_RESOURCE): runc fails the pause container with
  # "failed to update /proc/self/oom_score_adj: Permission denied" unless the CRI clamps -998/-997 to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CONTAINERD_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_CONF_DIR"
    max_conf_num = 1
TOML
  start containerd "$(command -v containerd)" --config "$CONTAINERD_DIR/config.toml" --log-level warn
  wait_for "containerd socket" 30 ctr --address "$CONTAINERD_SOCK" version || { alive_or_die containerd; die "containerd not answering"; }
  # The socket answers before the CRI plugin has initialised; a kubelet started in that window exits at once with
  # "validate CRI v1 runtime API ... server is not initialized yet" (seen on a loaded CI run). Wait for a CRI call.
  wait_for "containerd CRI" 60 "$K8S_BIN/tfscore-cri" -address "$CONTAINERD_SOCK" -timeout 2s pods \
    || { alive_or_die containerd; die "containerd's CRI not ready (log: $LOGS/containerd.log)"; }
}

kubelet_up() {
  local hip=$1
  mkdir -p "$STATE/kubelet"
  write_if_changed "$STATE/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: 0.0.0.0
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
podCIDR: $POD_CIDR
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
failSwapOn: false
registerNode: true
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Disk signals at "0%" are ignored by the kubelet (no DiskPressure): on a shared build box podman builds dip below 1% free
# for a moment, and the eviction it caused deleted the unpinned pause and loaded images from containerd and tainted the node.
evictionHard: {memory.available: "100Mi", nodefs.available: "0%", imagefs.available: "0%", nodefs.inodesFree: "0%"}
protectKernelDefaults: false
makeIPTablesUtilChains: true
rotateCertificates: false
serverTLSBootstrap: false
YAML
  start kubelet "$K8S_BIN/kubelet" --config "$STATE/kubelet/config.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" --hostname-override "$NODE_NAME" --node-ip "$hip" \
    --pod-infra-container-image "$PAUSE_IMAGE" --v=1
}

kube_proxy_up() {
  write_if_changed "$STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
conntrack: {maxPerCore: 0}
YAML
  start kube-proxy "$K8S_BIN/kube-proxy" --config "$STATE/kube-proxy.yaml" --v=1
}

node_ready_since() { # ISO time: Ready=True with lastHeartbeatTime >= it
  local r
  r=$(kubectl_ get node "$NODE_NAME" \
    -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}' 2>/dev/null) || return 1
  [[ ${r%% *} == True && ! ${r#* } < $1 ]]
}

node_up() {
  local hip; hip=$(host_ip)
  touch "$STATE/.node-level"   # host-wide changes (bridge, route, iptables) belong to this state dir from here on
  host_network_up
  build_images
  containerd_up
  import_image "$IMAGES_DIR/pause.tar" "$PAUSE_IMAGE"
  import_image "$IMAGES_DIR/echo.tar" "$ECHO_IMAGE"
  start kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --profiling=false --v=1
  local kubelet_since=1970-01-01T00:00:00Z
  running kubelet || kubelet_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  kubelet_up "$hip"
  kube_proxy_up
  wait_for "kube-scheduler /healthz" 60 curl -skf --max-time 1 "https://127.0.0.1:$SCHEDULER_PORT/healthz" \
    || { alive_or_die kube-scheduler; die "kube-scheduler not healthy"; }
  wait_for "kube-proxy /healthz" 60 curl -sf --max-time 1 "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz" \
    || { alive_or_die kube-proxy; die "kube-proxy not healthy"; }
  wait_for "kubelet /healthz" 60 curl -sf --max-time 1 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" \
    || { alive_or_die kubelet; die "kubelet not healthy"; }
  # Ready with a heartbeat from this kubelet (a stale Ready from before a restart does not count).
  wait_for "node $NODE_NAME Ready" 120 node_ready_since "$kubelet_since" \
    || { alive_or_die kubelet; die "node $NODE_NAME not Ready (log: $LOGS/kubelet.log)"; }
  # Pods may use the default ServiceAccount token right away.
  wait_for "kubernetes Service endpoints" 30 kubectl_ get endpointslices -n default -l kubernetes.io/service-name=kubernetes \
    -o name || true
}

# kube-proxy --cleanup leaves the kubelet's chains and both canaries: drop every KUBE-* chain and the jumps into them.
iptables_cleanup() {
  local cmd t c rule
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for t in filter nat mangle; do
      "$cmd" -t "$t" -S >/dev/null 2>&1 || continue
      while read -r rule; do eval "$cmd -t $t ${rule/#-A /-D }" 2>/dev/null || true; done \
        < <("$cmd" -t "$t" -S | grep -E -- '^-A .* -j KUBE-' || true)
      for c in $("$cmd" -t "$t" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do "$cmd" -t "$t" -F "$c"; done
      for c in $("$cmd" -t "$t" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do "$cmd" -t "$t" -X "$c" 2>/dev/null || true; done
    done
  done
}

node_down() {
  # A control-plane-only state dir never touched the host network: leave the bridge and iptables of any other
  # harness cluster on this machine alone.
  [[ -f $STATE/.node-level ]] || return 0
  stop kube-proxy
  [[ -x $K8S_BIN/kube-proxy && -f $STATE/kube-proxy.yaml ]] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  stop kubelet
  iptables_cleanup
  if running containerd; then
    # Stop and remove every pod sandbox through the CRI: containers die, CNI DEL frees veths and IP leases.
    "$K8S_BIN/tfscore-cri" -address "$CONTAINERD_SOCK" clean || log "some pod sandboxes could not be removed"
  fi
  stop containerd
  # Shims outlive containerd; ours are the ones bound to our socket path.
  local pid
  for pid in $(pgrep -f -- "-address $CONTAINERD_SOCK" || true); do
    [[ $pid == "$$" ]] && continue
    log "killing leftover containerd shim $pid"
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Unmount whatever is still mounted under the state dir (pod volumes, snapshots, netns), deepest first.
  local m
  for m in $(awk -v s="$STATE/" 'index($2, s) == 1 {print $2}' /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE" 2>/dev/null || true   # also drops the Service route
  rm -f "$STATE/.node-level"
  return 0
}
