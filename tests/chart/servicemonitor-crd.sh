#!/usr/bin/env bash
# Print the path of prometheus-operator's ServiceMonitor CRD, generated (once, then cached) from its Go API types by
# controller-gen, exactly as upstream generates it. Both come from the Go module proxy at pinned versions; the output
# lives in $TFSCORE_CACHE/chart-tier/crdgen, never in the repo. The chart tier installs it so a ServiceMonitor can be
# validated by the real API server. Log lines go to stderr; stdout is the path only.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../hack/cluster/lib.sh
source "$HERE/../../hack/cluster/lib.sh"        # Go toolchain + GOMODCACHE/GOCACHE shared with the cluster harness

MONITORING_VERSION=${MONITORING_VERSION:-v0.86.0}     # github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
CONTROLLER_TOOLS_VERSION=${CONTROLLER_TOOLS_VERSION:-v0.19.0}
MONITORING=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
DIR=$TFSCORE_CACHE/chart-tier/crdgen/$MONITORING_VERSION-$CONTROLLER_TOOLS_VERSION
OUT=$DIR/out/monitoring.coreos.com_servicemonitors.yaml

if [[ ! -s $OUT ]]; then
  command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
  mkdir -p "$DIR"
  cd "$DIR"
  exec 9>"$DIR/.lock"
  flock 9
  if [[ ! -s $OUT ]]; then
    log "generating the ServiceMonitor CRD ($MONITORING $MONITORING_VERSION, controller-gen $CONTROLLER_TOOLS_VERSION)"
    printf 'module tfscore.local/crdgen\n\ngo 1.24.0\n' > go.mod
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "%s/v1"\n\t_ "sigs.k8s.io/controller-tools/cmd/controller-gen"\n)\n' \
      "$MONITORING" > tools.go
    go get "$MONITORING@$MONITORING_VERSION" "sigs.k8s.io/controller-tools@$CONTROLLER_TOOLS_VERSION" >&2
    go mod tidy >&2
    go build -trimpath -o bin/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen >&2
    rm -rf out.tmp
    ./bin/controller-gen crd:crdVersions=v1,maxDescLen=0 "paths=$MONITORING/v1" output:crd:dir=out.tmp >&2
    [[ -s out.tmp/monitoring.coreos.com_servicemonitors.yaml ]] || die "controller-gen wrote no ServiceMonitor CRD"
    rm -rf out && mv out.tmp out
  fi
fi
echo "$OUT"
