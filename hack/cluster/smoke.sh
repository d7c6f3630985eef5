#!/usr/bin/env bash
# Node-level smoke test: a pod (locally built image, no registry) Running on the kubelet with bridge CNI networking,
# a ClusterIP Service reached through kube-proxy (iptables) from the host and from another pod, and the `kubernetes`
# Service reached from a pod. Needs `up.sh node`. Cleans up its namespace; exits non-zero on any failure.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
k() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
NS=tfscore-smoke
t0=$SECONDS
k delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
k create namespace "$NS" >/dev/null
trap 'k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true' EXIT

SEC='securityContext: {runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
          capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}'
k apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec:
  containers:
  - name: echo
    image: $ECHO_IMAGE
    imagePullPolicy: Never
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
    $SEC
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
YAML
k wait -n "$NS" --for=condition=Ready pod/echo --timeout=120s >/dev/null \
  || { k describe -n "$NS" pod/echo >&2; die "pod echo not Ready"; }
pod_ip=$(k get -n "$NS" pod echo -o jsonpath='{.status.podIP}')
svc_ip=$(k get -n "$NS" service echo -o jsonpath='{.spec.clusterIP}')
log "pod echo Running, IP $pod_ip; Service echo ClusterIP $svc_ip"

out=$(curl -sf --max-time 5 "http://$pod_ip:8080/") || die "pod IP $pod_ip:8080 unreachable from the host"
[[ $out == "tfscore-echo echo" ]] || die "unexpected answer from the pod: $out"
ok=
for _ in $(seq 40); do   # kube-proxy programs the Service shortly after the endpoint becomes ready
  if out=$(curl -sf --max-time 2 "http://$svc_ip/"); then ok=1; break; fi
  sleep 0.5
done
[[ -n $ok && $out == "tfscore-echo echo" ]] || die "ClusterIP $svc_ip:80 unreachable from the host (kube-proxy)"
log "host -> ClusterIP $svc_ip:80 -> pod: '$out'"

k apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  restartPolicy: Never
  containers:
  - name: get
    image: $ECHO_IMAGE
    imagePullPolicy: Never
    args: ["-get", "http://$svc_ip/"]
    $SEC
  - name: apiserver
    image: $ECHO_IMAGE
    imagePullPolicy: Never
    args: ["-dial", "\$(KUBERNETES_SERVICE_HOST):\$(KUBERNETES_SERVICE_PORT)"]
    $SEC
YAML
for _ in $(seq 120); do
  phase=$(k get -n "$NS" pod client -o jsonpath='{.status.phase}')
  [[ $phase == Succeeded || $phase == Failed ]] && break
  sleep 0.5
done
got=$(k logs -n "$NS" client -c get 2>&1 || true)
api=$(k logs -n "$NS" client -c apiserver 2>&1 || true)
[[ $phase == Succeeded ]] || { k describe -n "$NS" pod client >&2; die "client pod $phase: get='$got' apiserver='$api'"; }
log "pod -> ClusterIP $svc_ip:80 -> pod: '$got'; pod -> kubernetes Service: '$api'"
log "smoke passed in $((SECONDS - t0)) s"
