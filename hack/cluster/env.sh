#!/usr/bin/env bash
# Print the harness's contract as KEY=value lines (no quotes; paths contain no spaces):
#   eval "$(hack/cluster/env.sh | sed 's/^/export /')"      or      export $(hack/cluster/env.sh)
# Prints paths whether or not the cluster is up; `up.sh` is what makes them valid.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
cat <<ENV
KUBECONFIG=$KUBECONFIG_FILE
KUBECTL=$K8S_BIN/kubectl
HELM=$K8S_BIN/helm
K8S_BIN=$K8S_BIN
K8S_VERSION=$K8S_VERSION
CLUSTER_STATE=$STATE
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
CONTAINERD_ADDRESS=$CONTAINERD_SOCK
CONTAINERD_NAMESPACE=k8s.io
NODE_NAME=$NODE_NAME
PAUSE_IMAGE=$PAUSE_IMAGE
ECHO_IMAGE=$ECHO_IMAGE
ENV
