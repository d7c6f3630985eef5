#!/usr/bin/env bash
# Start a single-process SeaweedFS (`weed server -s3`: master + volume + filer + S3 gateway) for tests.
# Usage: up.sh [--state DIR] [--host IP] [--port N] [--build]
#   --state DIR  state (data, config, logs, pid) in DIR        (default $TFSCORE_S3_STATE or $TFSCORE_CACHE/s3/state)
#   --host IP    the one address every listener binds to       (default $TFSCORE_S3_HOST or 127.0.0.1; pods on the
#                local cluster reach the host on hack/cluster's node IP: --host "$(hack/s3/env.sh --node-ip)")
#   --port N     S3 port; 0: the last run's ports if free, else free ones (default $TFSCORE_S3_PORT or 0)
#   --build      build weed first if missing (hack/s3/build.sh); without it a missing binary exits 3
# Contract: logs on stderr; on success stdout gets KEY=value lines (also kept in DIR/env, printed by env.sh) and the
# exit code is 0 once an authenticated ListBuckets answers 200 and the master has a writable volume server.
# Idempotent: a server already running from DIR is reused (its env printed) if host/port agree; otherwise it fails.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

build=0
while (($#)); do
  case $1 in
    --state) S3_STATE=${2:?--state needs a directory}; shift 2 ;;
    --host) S3_HOST=${2:?--host needs an address}; shift 2 ;;
    --port) S3_PORT=${2:?--port needs a number}; shift 2 ;;
    --build) build=1; shift ;;
    *) die "usage: $0 [--state DIR] [--host IP] [--port N] [--build]" ;;
  esac
done
[[ $S3_PORT =~ ^[0-9]+$ ]] && ((S3_PORT < 65536)) || die "--port must be a number below 65536, got '$S3_PORT'"
[[ $S3_HOST =~ ^[0-9]+(\.[0-9]+){3}$ ]] || die "--host must be an IPv4 address, got '$S3_HOST'"
case $S3_HOST in 0.0.0.0) die "--host 0.0.0.0 would listen everywhere: give the address clients use (pods: $(host_ip))" ;; esac
mkdir -p "$S3_STATE"
S3_STATE=$(cd "$S3_STATE" && pwd)
s3_paths

if ! weed_present; then
  ((build)) || { log "weed $SEAWEEDFS_VERSION is not built ($WEED): run $HERE/build.sh or pass --build"; exit 3; }
  bash "$HERE/build.sh" >&2
fi

exec 9>"$S3_STATE/.up.lock"
flock 9

if running weed; then
  [[ -f $S3_ENV_FILE ]] || die "weed runs (pid $(cat "$PIDS/weed.pid")) but $S3_ENV_FILE is missing: run down.sh"
  have_host=$(sed -n 's/^S3_HOST=//p' "$S3_ENV_FILE"); have_port=$(sed -n 's/^S3_PORT=//p' "$S3_ENV_FILE")
  if [[ $have_host != "$S3_HOST" ]] || ((S3_PORT != 0 && S3_PORT != have_port)); then
    die "weed already runs from $S3_STATE on $have_host:$have_port (asked for $S3_HOST:$S3_PORT): run down.sh first"
  fi
  log "weed already running (pid $(cat "$PIDS/weed.pid")) on $have_host:$have_port"
  cat "$S3_ENV_FILE"
  exit 0
fi

# ---- config: found first in -config_dir, so no master/filer/security.toml of $HOME or /etc is picked up ---------------
mkdir -p "$S3_CONF" "$S3_DATA" "$LOGS" "$PIDS"
# Grow one volume per collection (each bucket is a collection; the default 7 would eat the volume slots in a few
# buckets), as `weed mini` does for the same reason.
write_if_changed "$S3_CONF/master.toml" <<TOML
[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
TOML
write_if_changed "$S3_CONF/filer.toml" <<TOML
[leveldb2]
enabled = true
dir = "$S3_DATA/filerldb2"
TOML
: | write_if_changed "$S3_CONF/security.toml"   # no JWT, no TLS: loopback or the node IP only
# One static identity with every action; no anonymous identity, so unsigned requests are denied.
umask 077
write_if_changed "$S3_CONFIG" <<JSON
{
  "identities": [
    {
      "name": "tfscore",
      "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
JSON
umask 022

# ---- ports: the S3 port (given or free) and seven internal ones, all on $S3_HOST --------------------------------------
taken=" "
pick_port() { # VAR: a port below the ephemeral range that nothing listens on and that this run has not handed out yet
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ $taken == *" $p "* ]] && continue
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && continue
    taken+="$p "; printf -v "$1" %s "$p"; return 0
  done
  die "no free port found in 20000-31999"
}

PORT_VARS=(P_S3 P_S3_GRPC P_MASTER P_MASTER_GRPC P_VOLUME P_VOLUME_GRPC P_FILER P_FILER_GRPC)
previous_ports() { # the ports of the last run from this state dir when all are free: the same endpoint after a restart,
  # and the same master meta dir (weed keeps it in <dir>/m<master port>)
  local -a old; local p
  [[ -f $S3_STATE/ports ]] || return 1
  mapfile -t old < "$S3_STATE/ports"
  ((${#old[@]} == ${#PORT_VARS[@]})) || return 1
  ((S3_PORT == 0 || S3_PORT == old[0])) || return 1
  for p in "${old[@]}"; do
    [[ $p =~ ^[0-9]+$ ]] || return 1
    ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || return 1
  done
  echo "${old[@]}"
}

launch() { # S3_PORT_TO_USE | "" (the previous run's ports)
  local v i=0
  if [[ -z $1 ]]; then
    for v in $(previous_ports); do printf -v "${PORT_VARS[i++]}" %s "$v"; done
  else
    P_S3=$1
    taken=" $P_S3 "
    for v in "${PORT_VARS[@]:1}"; do pick_port "$v"; done
  fi
  printf '%s\n' "$P_S3" "$P_S3_GRPC" "$P_MASTER" "$P_MASTER_GRPC" "$P_VOLUME" "$P_VOLUME_GRPC" "$P_FILER" \
    "$P_FILER_GRPC" > "$S3_STATE/ports"
  : > "$LOGS/weed.log"
  mkdir -p "$S3_SOCK_DIR"
  # Why each flag (read from weed/command/{server,s3,master}.go of the pinned version):
  #  -ip/-ip.bind: identity and the one bind address of every listener (an explicit -ip.bind also drops the extra
  #   localhost listeners); -master.peers=none: single master, no raft quorum wait; -master.telemetry=false: the
  #   master reports to telemetry.seaweedfs.com by default; -s3.port.iceberg/-s3.port.lance=0: off (they default to
  #   8181/9101); metrics stay off (-metricsPort defaults to 0); -s3.autoCreateBucket=false: a missing bucket is
  #   NoSuchBucket as on AWS; -volume.preStopSeconds=0: stop at once on SIGTERM (default waits 10 s).
  #  Global: -logtostderr (glog writes files in /tmp otherwise); -config_dir: our toml files.
  # The gRPC services also get unix sockets /tmp/seaweedfs-<svc>-grpc-<port>.sock (hard-coded upstream).
  # SENTRY_DSN unset: weed calls sentry.Init, which only reports when that variable names a DSN; WEED_* variables
  # would override the toml settings, so none are passed through.
  (
    unset SENTRY_DSN
    for v in $(compgen -e | grep '^WEED_' || true); do unset "$v"; done
    # shellcheck disable=SC2030  # HOME is the daemon's own
    export HOME=$S3_STATE
    cd "$S3_CONF"
    start weed "$WEED" \
      -logtostderr -config_dir="$S3_CONF" \
      server -ip="$S3_HOST" -ip.bind="$S3_HOST" -dir="$S3_DATA" \
      -master.port="$P_MASTER" -master.port.grpc="$P_MASTER_GRPC" -master.peers=none -master.telemetry=false \
      -master.volumeSizeLimitMB="${TFSCORE_S3_VOLUME_MB:-64}" -volume.max="${TFSCORE_S3_VOLUMES:-100}" \
      -volume.port="$P_VOLUME" -volume.port.grpc="$P_VOLUME_GRPC" -volume.preStopSeconds=0 \
      -filer.port="$P_FILER" -filer.port.grpc="$P_FILER_GRPC" -filer.localSocket="$S3_SOCK_DIR/filer.sock" \
      -s3 -s3.port="$P_S3" -s3.port.grpc="$P_S3_GRPC" -s3.port.iceberg=0 -s3.port.lance=0 \
      -s3.localSocket="$S3_SOCK_DIR/s3.sock" -s3.config="$S3_CONFIG" -s3.autoCreateBucket=false
  )
}

endpoint_of() { echo "http://$S3_HOST:$1"; }
s3_ok() { # authenticated ListBuckets answers 200
  curl -sf --max-time 2 -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    "$(endpoint_of "$P_S3")/"
}
volume_ok() { # the master knows a volume server with free slots: PutObject can be assigned a volume
  curl -sf --max-time 2 "http://$S3_HOST:$P_MASTER/dir/status" | grep -Eq '"Free": *[1-9]'
}
log_has_bind_error() { tail -n 50 "$LOGS/weed.log" 2>/dev/null | grep -q 'address already in use'; }

t0=$SECONDS
for attempt in 1 2 3; do
  port=$S3_PORT
  taken=" "
  if ((attempt == 1)) && previous_ports >/dev/null; then port=""
  elif ((port == 0)); then pick_port port; fi
  if ((S3_PORT != 0)) && ss -Hltn "sport = :$S3_PORT" 2>/dev/null | grep -q .; then die "port $S3_PORT is in use"; fi
  launch "$port"
  ok=0
  for ((i = 0; i < 240; i++)); do
    if ! running weed; then break; fi
    if log_has_bind_error; then break; fi
    if s3_ok && volume_ok; then ok=1; break; fi
    sleep 0.25
  done
  ((ok)) && break
  if log_has_bind_error && ((attempt < 3)); then
    log "a port was taken meanwhile; retrying with new ports"
    stop weed 10
    continue
  fi
  tail -n 40 "$LOGS/weed.log" >&2
  running weed && die "weed did not get ready in 60 s (log: $LOGS/weed.log); it is left running: call down.sh"
  die "weed exited (log: $LOGS/weed.log)"
done

write_if_changed "$S3_ENV_FILE" <<ENV
S3_ENDPOINT=$(endpoint_of "$P_S3")
S3_HOST=$S3_HOST
S3_PORT=$P_S3
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
AWS_DEFAULT_REGION=us-east-1
S3_STATE=$S3_STATE
S3_PID=$(cat "$PIDS/weed.pid")
S3_LOG=$LOGS/weed.log
WEED=$WEED
SEAWEEDFS_VERSION=$SEAWEEDFS_VERSION
ENV
log "SeaweedFS S3 ready on $(endpoint_of "$P_S3") in $((SECONDS - t0)) s (pid $(cat "$PIDS/weed.pid"))"
cat "$S3_ENV_FILE"
