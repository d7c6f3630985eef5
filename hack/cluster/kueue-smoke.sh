#!/usr/bin/env bash
# Kueue smoke test, kubectl only, against a cluster where `kueue.sh up` ran. It plays the tfscore operator's part of
# the contract in KUEUE.md (Workloads written by hand, status changes written the way a job controller must):
#   1. ClusterQueue quota for one of two Workloads (driver x1 + executor x2): one admitted, one pending with the reason
#   2. the admitted one marked Finished (server-side apply of the Finished condition on the status subresource):
#      the pending one is admitted
#   3. a higher-priority Workload (WorkloadPriorityClass; preemption.withinClusterQueue: LowerPriority): the running one
#      gets Evicted=True/Preempted, Preempted=True/InClusterQueue, and keeps its quota until the job controller
#      acknowledges (admission cleared, QuotaReserved/Admitted False, Requeued True): then the preemptor is admitted
#   4. the preemptor's owner deleted: the garbage collector deletes its Workload, the requeued one is admitted again
# Objects: namespace kueue-smoke and cluster-scoped kueue-smoke-* objects, deleted at the end (--keep leaves them).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

KCFG=${TFSCORE_KUEUE_KUBECONFIG:-$KUBECONFIG_FILE}   # the same cluster kueue.sh uses
NS=kueue-smoke
MANAGER=tfscore-operator          # the field manager the operator would use
keep=false; [[ ${1:-} == --keep ]] && keep=true
k() { "$K8S_BIN/kubectl" --kubeconfig "$KCFG" --request-timeout=20s "$@"; }
command -v jq >/dev/null || die "jq is needed (hack/cluster/deps.sh installs it)"

cleanup() {
  $keep && { log "objects kept (namespace $NS, kueue-smoke-* cluster objects)"; return 0; }
  k delete namespace "$NS" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  k delete clusterqueue kueue-smoke --ignore-not-found >/dev/null 2>&1 || true
  k delete resourceflavor kueue-smoke --ignore-not-found >/dev/null 2>&1 || true
  k delete workloadpriorityclass kueue-smoke-low kueue-smoke-high --ignore-not-found >/dev/null 2>&1 || true
}
trap cleanup EXIT

conditions() { # workload -> one line per condition
  k -n "$NS" get workload "$1" -o jsonpath='{range .status.conditions[*]}  {.type}={.status} {.reason}: {.message}{"\n"}{end}'
}
cond() { # workload type -> "status/reason"
  k -n "$NS" get workload "$1" -o json | jq -r --arg t "$2" \
    '(.status.conditions // []) | map(select(.type == $t)) | first | if . then "\(.status)/\(.reason)" else "none" end'
}
expect() { # workload type status/reason [timeout]
  local wl=$1 type=$2 want=$3 timeout=${4:-30} t0=$SECONDS got
  until got=$(cond "$wl" "$type") && [[ $got == "$want" ]]; do
    if ((SECONDS - t0 >= timeout)); then
      conditions "$wl" >&2
      die "$wl: expected $type=$want, got $got after ${timeout}s"
    fi
    sleep 0.25
  done
}
stays() { # workload type status/reason seconds: the condition holds for that long
  local t0=$SECONDS
  while ((SECONDS - t0 < $4)); do
    [[ $(cond "$1" "$2") == "$3" ]] || { conditions "$1" >&2; die "$1: $2 left $3"; }
    sleep 0.5
  done
}

workload() { # name priority-class priority: a Workload owned by ConfigMap <name> (a stand-in for the ScoringJob)
  local name=$1 uid
  k -n "$NS" create configmap "$name" >/dev/null
  uid=$(k -n "$NS" get configmap "$name" -o jsonpath='{.metadata.uid}')
  k apply --server-side --field-manager="$MANAGER" -o name -f - >&2 <<WL
apiVersion: kueue.x-k8s.io/v1beta2
kind: Workload
metadata:
  name: scoringjob-$name
  namespace: $NS
  labels: {kueue.x-k8s.io/queue-name: kueue-smoke, kueue.x-k8s.io/job-uid: "$uid"}
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: $name, uid: "$uid", controller: true, blockOwnerDeletion: true}
spec:
  queueName: kueue-smoke
  priorityClassRef: {group: kueue.x-k8s.io, kind: WorkloadPriorityClass, name: $2}
  priority: $3
  podSets:
  - name: driver
    count: 1
    template:
      spec:
        restartPolicy: Never
        containers: [{name: driver, image: tfscore-runtime, resources: {requests: {cpu: "1", memory: 1Gi}}}]
  - name: executor
    count: 2
    template:
      spec:
        restartPolicy: Never
        containers: [{name: executor, image: tfscore-runtime, resources: {requests: {cpu: "1", memory: 2Gi}}}]
WL
}

finish() { # workload: what a job controller writes when its job succeeded
  k apply --server-side --subresource=status --field-manager="$MANAGER" -o name -f - >&2 <<ST
apiVersion: kueue.x-k8s.io/v1beta2
kind: Workload
metadata: {name: $1, namespace: $NS}
status:
  conditions:
  - {type: Finished, status: "True", reason: Succeeded, message: "the ScoringJob succeeded",
     lastTransitionTime: "$(date -u +%Y-%m-%dT%H:%M:%SZ)", observedGeneration: 1}
ST
}

ack_eviction() { # workload: once the job's pods are gone, release the quota as jobframework does
  # (UnsetQuotaReservationWithCondition + SetRequeuedCondition): status.admission removed, QuotaReserved and Admitted
  # False, Requeued True for Preempted/NodeFailures (False, with the eviction reason, otherwise). One JSON merge patch
  # of the status subresource carrying the full condition list, guarded by resourceVersion (409 on a race).
  k -n "$NS" get workload "$1" -o json | jq -c --arg now "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
    .metadata.generation as $gen
    | (.status.conditions | map(select(.type == "Evicted")) | first) as $ev
    | {metadata: {resourceVersion: .metadata.resourceVersion}, status: {admission: null, conditions:
        ((.status.conditions | map(select(.type as $t | ["QuotaReserved", "Admitted", "Requeued"] | index($t) | not)))
         + ([{type: "QuotaReserved", status: "False", reason: "Pending", message: $ev.message},
             {type: "Admitted", status: "False", reason: "NoReservation", message: "The workload has no reservation"},
             {type: "Requeued", status: (if $ev.reason == "Preempted" or $ev.reason == "NodeFailures" then "True" else "False" end),
              reason: $ev.reason, message: $ev.message}]
            | map(. + {lastTransitionTime: $now, observedGeneration: $gen})))}}' \
    | k -n "$NS" patch workload "$1" --subresource=status --type=merge --field-manager="$MANAGER" --patch-file=/dev/stdin -o name >&2
}

cq_active() { [[ $(k get clusterqueue kueue-smoke -o jsonpath='{.status.conditions[?(@.type=="Active")].status}') == True ]]; }

t0=$SECONDS
k get crd workloads.kueue.x-k8s.io >/dev/null 2>&1 || die "Kueue CRDs missing: run hack/cluster/kueue.sh up first"
cleanup
log "queues: ResourceFlavor + ClusterQueue (cpu 4, memory 8Gi) + LocalQueue + WorkloadPriorityClasses"
k create namespace "$NS" >/dev/null
k apply --server-side --field-manager="$MANAGER" -o name -f - >&2 <<'EOF'
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: kueue-smoke}
spec:
  nodeLabels: {tfscore.io/pool: smoke}
  tolerations: [{key: tfscore.io/dedicated, operator: Equal, value: scoring, effect: NoSchedule}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: kueue-smoke}
spec:
  namespaceSelector: {}
  preemption: {withinClusterQueue: LowerPriority}
  resourceGroups:
  - coveredResources: [cpu, memory]
    flavors:
    - name: kueue-smoke
      resources: [{name: cpu, nominalQuota: "4"}, {name: memory, nominalQuota: 8Gi}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: kueue-smoke, namespace: kueue-smoke}
spec: {clusterQueue: kueue-smoke}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: kueue-smoke-low}
value: 100
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: kueue-smoke-high}
value: 1000
EOF
wait_for "ClusterQueue kueue-smoke Active" 30 cq_active || die "ClusterQueue kueue-smoke never became Active"

log "1. two Workloads (3 cpu, 5Gi each) for a quota of one"
workload job-a kueue-smoke-low 100
expect scoringjob-job-a Admitted True/Admitted
workload job-b kueue-smoke-low 100
expect scoringjob-job-b QuotaReserved False/Pending
stays scoringjob-job-b QuotaReserved False/Pending 2
conditions scoringjob-job-b >&2

log "2. job-a Finished (status apply by $MANAGER): job-b admitted"
finish scoringjob-job-a
expect scoringjob-job-b Admitted True/Admitted

log "3. job-c at priority 1000 preempts job-b"
workload job-c kueue-smoke-high 1000
expect scoringjob-job-b Evicted True/Preempted
expect scoringjob-job-b Preempted True/InClusterQueue
# Kueue does not release an evicted Workload's quota by itself: the preemptor waits for the job controller.
stays scoringjob-job-c QuotaReserved False/Pending 3
[[ $(cond scoringjob-job-b QuotaReserved) == True/QuotaReserved ]] || die "job-b lost its quota before the acknowledgement"
conditions scoringjob-job-b >&2
log "   acknowledging the eviction of job-b (its pods would be deleted first)"
ack_eviction scoringjob-job-b
expect scoringjob-job-c Admitted True/Admitted
expect scoringjob-job-b QuotaReserved False/Pending
expect scoringjob-job-b Requeued True/Preempted
[[ -z $(k -n "$NS" get workload scoringjob-job-b -o jsonpath='{.status.admission}') ]] || die "job-b still has status.admission"

log "4. job-c's owner deleted: its Workload is garbage-collected, job-b admitted again"
k -n "$NS" delete configmap job-c >/dev/null
expect scoringjob-job-b Admitted True/Admitted 60
expect scoringjob-job-b Evicted False/QuotaReserved
k -n "$NS" get workload scoringjob-job-c >/dev/null 2>&1 && die "job-c's Workload survived its owner"
k -n "$NS" get workloads >&2
log "kueue smoke passed in $((SECONDS - t0)) s"
