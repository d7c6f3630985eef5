#!/usr/bin/env bash
# Kueue (sigs.k8s.io/kueue, $KUEUE_VERSION) for the harness: its manager runs as a host process beside a running
# harness API server, the apiserver reaches its webhooks by `url:` on loopback. KUEUE.md has the contract.
# Usage: kueue.sh build|up|down|status|env
#   build  go install sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION -> $TFSCORE_CACHE/kueue/$KUEUE_VERSION/bin/kueue
#   up     (build if missing,) apply Kueue's CRDs server-side with their conversion webhook, start the manager, wait
#          for /readyz, create the admission webhook configurations and wait until a request through all three
#          webhooks (conversion, mutating, validating) succeeds. Idempotent: a running manager with the same binary
#          and configuration is kept, otherwise restarted.
#   down   delete the webhook configurations, stop the manager (pid file); CRDs and Kueue objects are kept.
#   status exit 0 when the manager recorded in the state dir is running
#   env    KEY=value lines: KUEUE_BIN, KUEUE_VERSION, KUBECTL, KUEUE_CONFIG, KUEUE_LOG, KUEUE_PID_FILE, KUEUE_*_URL
# Cluster: the harness cluster of $TFSCORE_CLUSTER_STATE (default: lib.sh's), through its own $STATE/kubeconfig (or
# $TFSCORE_KUEUE_KUBECONFIG; a plain $KUBECONFIG is ignored: it may point at a real cluster, and the webhook
# certificate is signed by this state dir's CA). Kueue's files live in $STATE/kueue, its log in $STATE/logs/kueue.log.
# Ports: TFSCORE_KUEUE_{WEBHOOK,HEALTH,METRICS}_PORT (lib.sh), all bound to 127.0.0.1.
# Kueue's CRDs and webhook manifests are read at run time from the module in GOMODCACHE, never copied into the repo.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

KUEUE_HOME=$TFSCORE_CACHE/kueue/$KUEUE_VERSION
KUEUE_BIN=$KUEUE_HOME/bin/kueue
KUEUE_PKG=sigs.k8s.io/kueue
KUEUE_KEY="kueue=$KUEUE_VERSION $(go env GOVERSION 2>/dev/null || echo go?) cgo=0 flags=v1"

kueue_build() {
  if [[ -x $KUEUE_BIN && -f $KUEUE_BIN.stamp && $(cat "$KUEUE_BIN.stamp") == "$KUEUE_KEY" ]]; then
    log "up to date: $KUEUE_BIN"; return 0
  fi
  command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
  mkdir -p "$KUEUE_HOME/bin" "$GOMODCACHE" "$GOCACHE"
  exec 8>"$KUEUE_HOME/.build.lock"
  flock 8
  if [[ -x $KUEUE_BIN && -f $KUEUE_BIN.stamp && $(cat "$KUEUE_BIN.stamp") == "$KUEUE_KEY" ]]; then return 0; fi
  local t0=$SECONDS info date out
  # Kueue's go.mod has no replace directives, so plain `go install pkg@version` resolves it from the proxy with
  # exactly its own go.sum (no wrapper module needed, unlike k8s.io/kubernetes in build.sh).
  info=$(GOFLAGS= go mod download -json "$KUEUE_PKG@$KUEUE_VERSION" | sed -n 's/^[[:space:]]*"Info": "\(.*\)",$/\1/p')
  date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null || true)
  out=$KUEUE_HOME/out.$$
  rm -rf "$KUEUE_HOME"/out.*; mkdir -p "$out"
  log "building $KUEUE_PKG/cmd/kueue@$KUEUE_VERSION (GOCACHE=$GOCACHE)"
  # The module proxy carries no commit hash: GitCommit says so rather than Kueue's placeholder.
  GOFLAGS= GOBIN=$out CGO_ENABLED=0 go install -trimpath -ldflags "-s -w \
    -X $KUEUE_PKG/pkg/version.GitVersion=$KUEUE_VERSION -X $KUEUE_PKG/pkg/version.GitCommit=module-proxy \
    -X $KUEUE_PKG/pkg/version.BuildDate=${date:-unknown}" "$KUEUE_PKG/cmd/kueue@$KUEUE_VERSION"
  mv -f "$out/kueue" "$KUEUE_BIN"
  rm -rf "$out"
  echo "$KUEUE_KEY" > "$KUEUE_BIN.stamp"
  log "built kueue $KUEUE_VERSION in $((SECONDS - t0)) s ($(du -h "$KUEUE_BIN" | cut -f1)) -> $KUEUE_BIN"
}

KUEUE_HOST=127.0.0.1
KDIR=$STATE/kueue                            # config.yaml, certs/, rendered crds.json + webhooks.json
KUBECTL=$K8S_BIN/kubectl
KCFG=${TFSCORE_KUEUE_KUBECONFIG:-$KUBECONFIG_FILE}
WEBHOOK_URL=https://$KUEUE_HOST:$KUEUE_WEBHOOK_PORT
MANAGER=tfscore-kueue-sh                     # field manager of what this script applies
MUTATING=kueue-mutating-webhook-configuration  # the names Kueue's own kustomize install uses (namePrefix kueue-)
VALIDATING=kueue-validating-webhook-configuration

kc() { "$KUBECTL" --kubeconfig "$KCFG" --request-timeout=20s "$@"; }

module_dir() { # the downloaded sigs.k8s.io/kueue module (read-only, in GOMODCACHE)
  local dir
  dir=$(cd "$KUEUE_HOME" && GOFLAGS= go mod download -json "$KUEUE_PKG@$KUEUE_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $dir/config/components/crd/bases ]] || die "could not download $KUEUE_PKG@$KUEUE_VERSION"
  echo "$dir"
}

render_crds() { # module-dir ca-bundle -> $KDIR/crds.json (a List)
  local dir=$1 ca=$2 conv
  # The CRDs whose conversion webhook Kueue's own kustomization enables (uncommented webhook_in_<plural> patches):
  # v1beta1 and v1beta2 differ in shape, so those need Kueue's /convert to serve v1beta1.
  conv=$(sed -n 's#^- path: patches/webhook_in_\(.*\)\.yaml#\1#p' "$dir/config/components/crd/kustomization.yaml" \
    | jq -R . | jq -s -c .)
  kc patch --local -f "$dir/config/components/crd/bases" --type merge -p '{}' -o json \
    | jq -s --argjson conv "$conv" --arg url "$WEBHOOK_URL/convert" --arg ca "$ca" --arg by "$MANAGER" \
      '{apiVersion: "v1", kind: "List", items: map(
        .metadata.labels["app.kubernetes.io/managed-by"] = $by
        | if (.spec.names.plural as $p | $conv | index($p)) then .spec.conversion = {strategy: "Webhook", webhook: {
            clientConfig: {url: $url, caBundle: $ca}, conversionReviewVersions: ["v1"]}} else . end)}' \
      > "$KDIR/crds.json"
}

apply_crds() { # server-side apply of $KDIR/crds.json, skipped when the cluster already has exactly this rendering
  local sha n have
  sha=$(sha256sum < "$KDIR/crds.json" | cut -c1-16)
  n=$(jq '.items | length' "$KDIR/crds.json")
  # Applying ~1.6 MB of unchanged CRDs still costs the API server seconds; the annotation records what was applied.
  have=$(kc get crd -l "app.kubernetes.io/managed-by=$MANAGER" \
    -o jsonpath='{range .items[*]}{.metadata.annotations.tfscore\.io/kueue-crds}{"\n"}{end}' 2>/dev/null \
    | grep -cx "$sha" || true)
  if [[ $have == "$n" ]]; then log "Kueue CRDs up to date ($n)"; return 0; fi
  jq --arg sha "$sha" '.items |= map(.metadata.annotations["tfscore.io/kueue-crds"] = $sha)' "$KDIR/crds.json" \
    | kc apply --server-side --force-conflicts --field-manager="$MANAGER" -f - -o name >&2
  kc wait --for=condition=Established --timeout=60s -f "$KDIR/crds.json" >/dev/null
}

render_webhooks() { # module-dir ca-bundle -> $KDIR/webhooks.json
  # Only the webhooks for Kueue's own API group (workloads, clusterqueues, resourceflavors, cohorts): the job
  # integrations' webhooks (pods, deployments, batch Jobs, ...) have failurePolicy Fail and would make every pod
  # creation on the harness depend on this process. service: is replaced by url: on loopback.
  kc patch --local -f "$1/config/components/webhook/manifests.yaml" --type merge -p '{}' -o json \
    | jq -s --arg url "$WEBHOOK_URL" --arg ca "$2" --arg by "$MANAGER" '{apiVersion: "v1", kind: "List", items: map(
        .metadata = {name: ("kueue-" + .metadata.name), labels: {"app.kubernetes.io/managed-by": $by}}
        | .webhooks |= map(select(all(.rules[].apiGroups[]; . == "kueue.x-k8s.io"))
            | .clientConfig = {url: ($url + .clientConfig.service.path), caBundle: $ca}))}' > "$KDIR/webhooks.json"
}

write_config() { # -> $KDIR/config.yaml
  write_if_changed "$KDIR/config.yaml" <<CFG
# Generated by hack/cluster/kueue.sh; do not edit.
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: kueue-system
health:
  healthProbeBindAddress: $KUEUE_HOST:$KUEUE_HEALTH_PORT
metrics:
  bindAddress: $KUEUE_HOST:$KUEUE_METRICS_PORT
webhook:
  host: $KUEUE_HOST
  port: $KUEUE_WEBHOOK_PORT
  certDir: $KDIR/certs
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
manageJobsWithoutQueueName: false
integrations:
  # Kueue replaces an empty list with batch/job; tfscore creates Workloads itself. Its batch/job webhook is not
  # registered (render_webhooks), so only Jobs labelled kueue.x-k8s.io/queue-name are ever touched.
  frameworks: ["batch/job"]
featureGates:
  # on by default: an aggregated API server on 0.0.0.0:8082, which nothing here uses
  VisibilityOnDemand: false
clientConnection:
  qps: 50
  burst: 100
CFG
}

kueue_exec() { # internal (`kueue.sh _exec`), run by `unshare --mount`: exec the manager in its own mount namespace
  # With internalCertManagement off, Kueue 0.17 reads its metrics certificate from the hard-coded
  # /etc/kueue/metrics/certs/tls.{crt,key} (cmd/kueue/main.go) and exits without it. This namespace overlays /etc
  # with a tmpfs holding only that directory, so the host's /etc is never written and every cluster's Kueue has its
  # own; the mounts vanish with the process.
  local ovl=$KDIR/etc-overlay
  mount -t tmpfs -o size=1m,mode=0700 tfscore-kueue "$ovl"
  mkdir -p "$ovl/upper/kueue/metrics/certs" "$ovl/work"
  cp "$KDIR/certs/tls.crt" "$KDIR/certs/tls.key" "$ovl/upper/kueue/metrics/certs/"
  mount -t overlay tfscore-kueue-etc -o "lowerdir=/etc,upperdir=$ovl/upper,workdir=$ovl/work" /etc
  export KUBECONFIG=$KCFG
  exec "$KUEUE_BIN" --config "$KDIR/config.yaml" --zap-log-level="${TFSCORE_KUEUE_LOG_LEVEL:-info}"
}

listening() { ss -Hltn 2>/dev/null | awk '{print $4}' | grep -Eq ":$1\$"; }

probe_webhooks() { # a server-side dry run through conversion (v1beta1 -> v1beta2), mutating and validating webhooks
  kc create --dry-run=server -o name -f - <<'WL'
apiVersion: kueue.x-k8s.io/v1beta1
kind: Workload
metadata: {name: kueue-sh-probe, namespace: default}
spec:
  queueName: kueue-sh-probe
  podSets:
  - name: main
    count: 1
    template:
      spec:
        restartPolicy: Never
        containers: [{name: probe, image: probe, resources: {requests: {cpu: 1m}}}]
WL
}

kueue_up() {
  local t0=$SECONDS dir ca key rkey pid p
  kueue_build
  command -v jq >/dev/null && command -v openssl >/dev/null && command -v curl >/dev/null \
    && command -v unshare >/dev/null || bash "$HERE/deps.sh" >&2
  [[ -x $KUBECTL ]] || die "kubectl missing in $K8S_BIN (run hack/cluster/build.sh control-plane)"
  [[ -f $KCFG ]] || die "no kubeconfig at $KCFG (start the cluster with hack/cluster/up.sh first)"
  kc get --raw /readyz >/dev/null 2>&1 || die "the API server of $KCFG is not ready (start it with hack/cluster/up.sh)"
  mkdir -p "$KDIR/certs" "$KDIR/etc-overlay" "$LOGS" "$PIDS"
  exec 9>"$KDIR/.up.lock"
  flock 9
  # shellcheck source=pki.sh
  source "$HERE/pki.sh"
  ensure_serving_cert kueue-webhook kueue-webhook "DNS:localhost,IP:$KUEUE_HOST"
  # Replaced atomically and only when changed: the running manager watches these files (a truncating cp made its
  # certwatcher log "failed to find any PEM data").
  (umask 077; write_if_changed "$KDIR/certs/tls.key" < "$PKI/kueue-webhook.key")
  write_if_changed "$KDIR/certs/tls.crt" < "$PKI/kueue-webhook.crt"
  ca=$(base64 -w0 < "$PKI/ca.crt")
  write_config
  # Rendering reads the module from GOMODCACHE; redone only when the version, the webhook URL or the CA changed.
  rkey="$KUEUE_VERSION $WEBHOOK_URL $(sha256sum < "$PKI/ca.crt" | cut -c1-16) render=v1"
  if [[ ! -f $KDIR/crds.json || ! -f $KDIR/webhooks.json || $(cat "$KDIR/.rendered" 2>/dev/null) != "$rkey" ]]; then
    dir=$(module_dir)
    render_crds "$dir" "$ca"
    render_webhooks "$dir" "$ca"
    echo "$rkey" > "$KDIR/.rendered"
  fi
  apply_crds

  # Restart a running manager whose binary, configuration or certificate changed.
  key="$(cat "$KUEUE_BIN.stamp") log=${TFSCORE_KUEUE_LOG_LEVEL:-info}"
  key+=" $(cat "$KDIR/config.yaml" "$KDIR/certs/tls.crt" "$KCFG" | sha256sum | cut -c1-16)"
  if running kueue && [[ $(cat "$KDIR/.running" 2>/dev/null) != "$key" ]]; then
    log "kueue configuration changed: restarting"
    stop kueue
  fi
  if running kueue; then
    log "kueue already running (pid $(cat "$PIDS/kueue.pid"))"
  else
    for p in "$KUEUE_WEBHOOK_PORT" "$KUEUE_HEALTH_PORT" "$KUEUE_METRICS_PORT"; do
      ! listening "$p" || die "port $p is already in use (set TFSCORE_KUEUE_{WEBHOOK,HEALTH,METRICS}_PORT)"
    done
    local -a ns=(unshare --mount --propagation private)
    [[ $(id -u) == 0 ]] || ns+=(--map-root-user)   # mounting needs root, or a user namespace
    # fds 8/9 are our flocks: the daemon must not hold them.
    setsid "${ns[@]}" -- bash "$HERE/kueue.sh" _exec >>"$LOGS/kueue.log" 2>&1 < /dev/null 8>&- 9>&- &
    pid=$!
    echo "$pid" > "$PIDS/kueue.pid"
    readlink -f "$KUEUE_BIN" > "$PIDS/kueue.exe"
    echo "$key" > "$KDIR/.running"
    log "started kueue (pid $pid, log $LOGS/kueue.log)"
  fi
  local ready_t0=$SECONDS
  until curl -sf --max-time 2 "http://$KUEUE_HOST:$KUEUE_HEALTH_PORT/readyz" >/dev/null 2>&1; do
    if [[ ! -d /proc/$(cat "$PIDS/kueue.pid") ]]; then
      tail -n 30 "$LOGS/kueue.log" >&2; die "kueue exited (log: $LOGS/kueue.log)"
    fi
    if ((SECONDS - ready_t0 >= 120)); then tail -n 30 "$LOGS/kueue.log" >&2; die "kueue not ready after 120 s"; fi
    sleep 0.25
  done
  log "kueue /readyz ok after $((SECONDS - ready_t0)) s"
  kc apply --server-side --force-conflicts --field-manager="$MANAGER" -f "$KDIR/webhooks.json" -o name >&2
  wait_for "the Kueue webhooks to answer" 60 probe_webhooks || { probe_webhooks >&2 || true; die "kueue webhooks not answering"; }
  log "kueue $KUEUE_VERSION ready in $((SECONDS - t0)) s: webhooks $WEBHOOK_URL, health http://$KUEUE_HOST:$KUEUE_HEALTH_PORT"
}

kueue_down() {
  [[ -d $STATE ]] || { log "no state dir $STATE: nothing to stop"; return 0; }
  # Webhook configurations first: with failurePolicy Fail they would reject Kueue objects once the process is gone.
  if [[ -f $KCFG ]] && kc get --raw /readyz >/dev/null 2>&1; then
    kc delete mutatingwebhookconfiguration "$MUTATING" --ignore-not-found >&2
    kc delete validatingwebhookconfiguration "$VALIDATING" --ignore-not-found >&2
  else
    log "API server of $KCFG not reachable: webhook configurations left as they are"
  fi
  stop kueue
  rm -f "$KDIR/.running"
  # The ports the manager was configured with (down.sh may call us without the TFSCORE_KUEUE_*_PORT it was started with).
  local p ports=("$KUEUE_WEBHOOK_PORT" "$KUEUE_HEALTH_PORT" "$KUEUE_METRICS_PORT")
  if [[ -f $KDIR/config.yaml ]]; then
    mapfile -t ports < <(sed -n 's/^  \(port\|healthProbeBindAddress\|bindAddress\): \(.*:\)\{0,1\}\([0-9]*\)$/\3/p' \
      "$KDIR/config.yaml")
  fi
  for p in "${ports[@]}"; do
    ! listening "$p" || die "something still listens on kueue port $p"
  done
  log "kueue down"
}

kueue_env() {
  cat <<ENV
KUEUE_VERSION=$KUEUE_VERSION
KUEUE_BIN=$KUEUE_BIN
KUBECTL=$KUBECTL
KUEUE_CONFIG=$KDIR/config.yaml
KUEUE_LOG=$LOGS/kueue.log
KUEUE_PID_FILE=$PIDS/kueue.pid
KUEUE_WEBHOOK_URL=$WEBHOOK_URL
KUEUE_HEALTH_URL=http://$KUEUE_HOST:$KUEUE_HEALTH_PORT
KUEUE_METRICS_URL=https://$KUEUE_HOST:$KUEUE_METRICS_PORT/metrics
ENV
}

case ${1:-} in
  build) kueue_build ;;
  up) kueue_up ;;
  down) kueue_down ;;
  status) running kueue ;;
  env) kueue_env ;;
  _exec) kueue_exec ;;
  *) die "usage: $0 build|up|down|status|env" ;;
esac
