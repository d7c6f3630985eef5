"""Pure Kueue integration: the Workload a queued ScoringJob asks for, what Kueue's answer means, and what to write back.

A ScoringJob labelled `kueue.x-k8s.io/queue-name` (with the operator's TFSCORE_KUEUE on) runs nothing until Kueue
admits its Workload (`kueue.x-k8s.io/v1beta2`, the storage version: a v1beta1 client breaks whenever Kueue is down).
The Workload has two pod sets, `driver` ×1 and `executor` ×instances, with the requests the pods will carry: the driver
pod's own container resources (builders.driver_pod) and, for executors, what Spark's BasicExecutorFeatureStep derives from
this attempt's spark.properties (spec.sparkConf applied): cpu = spark.kubernetes.executor.request.cores or
spark.executor.cores, memory = spark.executor.memory + memoryOverhead (+ off-heap when enabled), GPUs from
spark.executor.resource.gpu.amount. Kueue does not resolve priorities for a custom controller: `spec.priority` is the
PriorityClass value read by the caller. Contract details (checked against Kueue v0.17.0): hack/cluster/KUEUE.md.

Nothing here does I/O or reads the clock; queued.py applies what `plan` decides.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from tfscore.api import common
from tfscore.api.common import memory_mib
from tfscore.api.scoringjob import Phase, ScoringJob
from tfscore.operator.config import OperatorConfig
from tfscore.operator.scoringjob import builders, names

GROUP = "kueue.x-k8s.io"
VERSION = "v1beta2"
API_VERSION = f"{GROUP}/{VERSION}"
WORKLOADS = "workloads"
QUEUE_LABEL = f"{GROUP}/queue-name"
JOB_UID_LABEL = f"{GROUP}/job-uid"        # Kueue quotes it in preemption messages (`JobUID: UNKNOWN` without it)
PODSET_LABEL = f"{GROUP}/podset"          # on the pods, as Kueue's jobframework labels them (informational)
SPEC_HASH = f"{common.GROUP}/workload-spec"  # annotation: the hash of what the pod sets were built from
FIELD_MANAGER = "tfscore-operator"
DRIVER, EXECUTOR = names.ROLE_DRIVER, names.ROLE_EXECUTOR
PRIORITY_CLASS_REF = {"group": "scheduling.k8s.io", "kind": "PriorityClass"}

State = Literal["absent", "pending", "admitted", "evicted", "finished"]


def queue_name(body: Mapping[str, Any]) -> str | None:
    """The LocalQueue a ScoringJob asks for (its `kueue.x-k8s.io/queue-name` label), or None."""
    value = ((body.get("metadata") or {}).get("labels") or {}).get(QUEUE_LABEL, "").strip()
    return value or None


def workload_name(job: str, uid: str) -> str:
    """`scoringjob-<job>-<hash of the uid>` (jobframework's scheme): a re-created namesake gets a new Workload."""
    return f"scoringjob-{job}-{hashlib.sha256(uid.encode()).hexdigest()[:5]}"


# ---------------------------------------------------------------- what the pods will request


def spark_mib(value: str) -> int:
    """A Spark memory setting in MiB: a bare number is MiB (spark.executor.memory's unit), else a size with a unit."""
    value = value.strip()
    return int(value) if value.isdigit() else memory_mib(value)


def executor_resources(props: Mapping[str, str]) -> dict[str, Any]:
    """The resources Spark puts on each executor pod, from the attempt's final spark.properties."""
    cpu = props.get("spark.kubernetes.executor.request.cores") or props["spark.executor.cores"]
    memory = spark_mib(props["spark.executor.memory"]) + spark_mib(props["spark.executor.memoryOverhead"])
    if props.get("spark.memory.offHeap.enabled", "false").lower() == "true":
        memory += spark_mib(props.get("spark.memory.offHeap.size", "0"))
    requests: dict[str, str] = {"cpu": cpu, "memory": f"{memory}Mi"}
    limits: dict[str, str] = {"memory": f"{memory}Mi"}
    if props.get("spark.kubernetes.executor.limit.cores"):
        limits["cpu"] = props["spark.kubernetes.executor.limit.cores"]
    gpu = props.get("spark.executor.resource.gpu.amount")
    if gpu and gpu != "0":
        vendor = props.get("spark.executor.resource.gpu.vendor", names.GPU_VENDOR)
        requests[f"{vendor}/gpu"] = limits[f"{vendor}/gpu"] = gpu  # extended resources: request = limit
    return {"requests": requests, "limits": limits}


def _template(pod: Mapping[str, Any], container: Mapping[str, Any], resources: Mapping[str, Any]) -> dict[str, Any]:
    """A pod set's template: what Kueue reads (requests, node selection, priority), not the whole pod."""
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [
        {"name": container["name"], "image": container["image"], "resources": dict(resources)}]}
    for key in ("nodeSelector", "tolerations", "priorityClassName"):
        if pod["spec"].get(key):
            spec[key] = pod["spec"][key]
    return {"spec": spec}


def pod_sets(job: ScoringJob, body: Mapping[str, Any], config: OperatorConfig) -> list[dict[str, Any]]:
    """driver ×1 and executor ×instances, built from the very builders the attempt's pods come from."""
    driver = builders.driver_pod(job, body, config, 1)
    image = driver["spec"]["containers"][0]["image"]
    template = builders.executor_pod_template(job, config, image)
    props = builders.spark_properties(job, body["metadata"]["namespace"], 1, image)
    container = driver["spec"]["containers"][0]
    return [
        {"name": DRIVER, "count": 1, "template": _template(driver, container, container["resources"])},
        {"name": EXECUTOR, "count": int(props["spark.executor.instances"]),
         "template": _template(template, template["spec"]["containers"][0], executor_resources(props))},
    ]


def spec_hash(queue: str, sets: list[dict[str, Any]], priority_class: str | None) -> str:
    return hashlib.sha256(json.dumps([queue, sets, priority_class], sort_keys=True).encode()).hexdigest()[:16]


def build_workload(job: ScoringJob, body: Mapping[str, Any], config: OperatorConfig, queue: str,
                   priority: tuple[str, int] | None, active: bool) -> dict[str, Any]:
    """The Workload of a queued ScoringJob, owned by it (garbage-collected with it). `priority`: the PriorityClass
    (name, value) its pods will run at, or None (priority 0)."""
    meta = body["metadata"]
    sets = pod_sets(job, body, config)
    spec: dict[str, Any] = {"queueName": queue, "active": active, "podSets": sets}
    if priority is not None:
        spec["priorityClassRef"] = {**PRIORITY_CLASS_REF, "name": priority[0]}
        spec["priority"] = priority[1]
    return {
        "apiVersion": API_VERSION,
        "kind": "Workload",
        "metadata": {
            "name": workload_name(meta["name"], meta["uid"]),
            "namespace": meta["namespace"],
            "labels": {**names.labels(meta["name"], "workload"), QUEUE_LABEL: queue, JOB_UID_LABEL: meta["uid"]},
            "annotations": {SPEC_HASH: spec_hash(queue, sets, job.spec.priority_class_name)},
            "ownerReferences": [names.owner_reference(body)],
        },
        "spec": spec,
    }


# ---------------------------------------------------------------- what Kueue says


@dataclasses.dataclass(frozen=True)
class QueueView:
    """Kueue's word on a ScoringJob's Workload, as lifecycle.decide needs it."""

    queue: str                      # the LocalQueue
    state: State
    reason: str = ""                # Kueue's reason: Pending, Inadmissible, Preempted, Deactivated, …
    message: str = ""               # Kueue's sentence (why it waits, why it was evicted)
    cluster_queue: str = ""         # admitted: the ClusterQueue holding its quota
    reserved: bool = False          # QuotaReserved=True: it holds quota (until Finished or released)

    @property
    def admitted(self) -> bool:
        return self.state == "admitted"

    def describe(self) -> str:
        return f"queued in LocalQueue {self.queue}: {self.message}" if self.message else \
            f"queued in LocalQueue {self.queue}"


def conditions(wl: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {c.get("type"): c for c in ((wl or {}).get("status") or {}).get("conditions") or []}


def _true(conds: Mapping[str, Mapping[str, Any]], type_: str) -> bool:
    return (conds.get(type_) or {}).get("status") == "True"


def observe_workload(wl: Mapping[str, Any] | None, queue: str) -> QueueView:
    """A Workload's status → QueueView. Evicted with quota still reserved means "stop the pods, then release"."""
    if wl is None:
        return QueueView(queue, "absent", "Created", "waiting for Kueue (creating the Workload)")
    conds = conditions(wl)
    reserved = _true(conds, "QuotaReserved")
    finished, evicted = conds.get("Finished"), conds.get("Evicted")
    if finished and finished.get("status") == "True":
        return QueueView(queue, "finished", finished.get("reason", ""), finished.get("message", ""), reserved=reserved)
    if evicted and evicted.get("status") == "True" and reserved:
        return QueueView(queue, "evicted", evicted.get("reason", ""), evicted.get("message", ""), reserved=True)
    if _true(conds, "Admitted") and not (evicted and evicted.get("status") == "True"):
        cq = ((wl.get("status") or {}).get("admission") or {}).get("clusterQueue", "")
        return QueueView(queue, "admitted", "Admitted", f"admitted by ClusterQueue {cq}", cq, reserved)
    if (wl.get("spec") or {}).get("active") is False:
        return QueueView(queue, "pending", "Inactive", "the Workload is inactive (spec.active is false)", reserved=reserved)
    if reserved:  # quota reserved, admission checks still pending
        admitted = conds.get("Admitted") or {}
        return QueueView(queue, "pending", admitted.get("reason") or "AdmissionChecks",
                         admitted.get("message") or "waiting for admission checks", reserved=True)
    quota = conds.get("QuotaReserved")
    if quota:
        return QueueView(queue, "pending", quota.get("reason", "Pending"), quota.get("message", ""))
    return QueueView(queue, "pending", "Created", "waiting for Kueue to evaluate the Workload")


def _flavor_names(assignment: Mapping[str, Any]) -> list[str]:
    return sorted(set((assignment.get("flavors") or {}).values()))


def placements(wl: Mapping[str, Any], flavors: Mapping[str, Mapping[str, Any]]) -> dict[str, builders.Placement]:
    """The admission → a Placement per pod set: the assigned ResourceFlavors' spec.nodeLabels and spec.tolerations
    (`flavors`: name → ResourceFlavor, read by the caller) plus admission checks' podSetUpdates (Kueue's
    podset.FromAssignment + Merge), and the kueue.x-k8s.io/podset label."""
    status = wl.get("status") or {}
    updates: dict[str, list[Mapping[str, Any]]] = {}
    for check in status.get("admissionChecks") or []:
        for update in check.get("podSetUpdates") or []:
            updates.setdefault(update.get("name", ""), []).append(update)
    out = {}
    for assignment in (status.get("admission") or {}).get("podSetAssignments") or []:
        name = assignment.get("name", "")
        selector: dict[str, str] = {}
        tolerations: list[Mapping[str, Any]] = []
        labels, annotations = {PODSET_LABEL: name}, {}
        for flavor in _flavor_names(assignment):
            spec = (flavors.get(flavor) or {}).get("spec") or {}
            selector.update(spec.get("nodeLabels") or {})
            tolerations += [t for t in spec.get("tolerations") or [] if t not in tolerations]
        for update in updates.get(name, []):
            selector.update(update.get("nodeSelector") or {})
            tolerations += [t for t in update.get("tolerations") or [] if t not in tolerations]
            labels.update(update.get("labels") or {})
            annotations.update(update.get("annotations") or {})
        out[name] = builders.Placement(selector, tuple(tolerations), labels, annotations)
    return out


def flavors_of(wl: Mapping[str, Any]) -> list[str]:
    """Every ResourceFlavor the admission names (the caller reads them for `placements`)."""
    assignments = ((wl.get("status") or {}).get("admission") or {}).get("podSetAssignments") or []
    return sorted({f for a in assignments for f in _flavor_names(a)})


# ---------------------------------------------------------------- what the operator writes back


def _stamp(wl: Mapping[str, Any], cond: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**cond, "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "observedGeneration": (wl.get("metadata") or {}).get("generation", 0)}


def release_patch(wl: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Acknowledge an eviction once the pods are gone (jobframework's UnsetQuotaReservationWithCondition +
    SetRequeuedCondition): one JSON merge patch of the status subresource carrying the full condition list, guarded by
    resourceVersion. admission → null (server-side apply cannot remove it), QuotaReserved and Admitted False, Requeued
    True for Preempted/NodeFailures (Kueue requeues the rest itself when their cause ends). Leaving Admitted=True would
    free the quota but strand the Workload (KUEUE.md)."""
    conds = conditions(wl)
    evicted = conds.get("Evicted") or {}
    reason, message = evicted.get("reason", "Evicted"), evicted.get("message", "")
    kept = [c for t, c in conds.items() if t not in ("QuotaReserved", "Admitted", "Requeued")]
    new = [
        {"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": message},
        {"type": "Admitted", "status": "False", "reason": "NoReservation", "message": "The workload has no reservation"},
        {"type": "Requeued", "status": "True" if reason in ("Preempted", "NodeFailures") else "False",
         "reason": reason, "message": message},
    ]
    return {"metadata": {"resourceVersion": wl["metadata"]["resourceVersion"]},
            "status": {"admission": None, "conditions": [*kept, *(_stamp(wl, c, now) for c in new)]}}


def finished_apply(wl: Mapping[str, Any], succeeded: bool, message: str, now: datetime) -> dict[str, Any]:
    """The Finished condition, server-side applied to the status subresource by FIELD_MANAGER: Kueue releases the
    quota at once and leaves its own conditions as they are."""
    cond = {"type": "Finished", "status": "True", "reason": "Succeeded" if succeeded else "Failed",
            "message": (message or "the ScoringJob finished")[:32768]}
    meta = wl["metadata"]
    return {"apiVersion": API_VERSION, "kind": "Workload", "metadata": {"name": meta["name"],
            "namespace": meta["namespace"]}, "status": {"conditions": [_stamp(wl, cond, now)]}}


# Kueue deactivating a Workload itself (maximumExecutionTimeSeconds, requeuing limit) writes Evicted reason
# "Deactivated" + a cause ("DeactivatedDueTo…"); a plain "Deactivated" follows our own spec.active=false.
_KUEUE_DEACTIVATED = re.compile(r"^Deactivated.+")


@dataclasses.dataclass(frozen=True)
class Plan:
    """The Workload writes of one reconcile (at most a few are ever true at once)."""

    create: bool = False
    delete: bool = False
    update_spec: bool = False       # pod sets / queue / priority changed while no quota is reserved
    active: bool | None = None      # set spec.active to this
    release: bool = False           # acknowledge an eviction (the pods are gone)
    finish: bool | None = None      # Finished: True succeeded, False failed

    def __bool__(self) -> bool:
        return self.create or self.delete or self.update_spec or self.release or self.active is not None \
            or self.finish is not None


def plan(wl: Mapping[str, Any] | None, queue: str | None, phase: str | None, suspend: bool, pods_active: bool,
         desired_hash: str | None) -> Plan:
    """What to write to the Workload after lifecycle.decide: `phase` is the decided one, `pods_active` whether a driver
    pod of the job still exists unfinished (a deleted one counts until it is gone)."""
    conds = conditions(wl)
    if wl is not None and _true(conds, "Finished"):
        return Plan()
    if queue is None:
        return Plan(delete=wl is not None)   # the label was removed: the job runs unqueued, release what it held
    if phase in (Phase.succeeded, Phase.failed):
        return Plan(finish=phase == Phase.succeeded) if wl is not None else Plan()
    if wl is None:
        return Plan(create=True)
    reserved = _true(conds, "QuotaReserved")
    annotations = (wl.get("metadata") or {}).get("annotations") or {}
    update = desired_hash is not None and not reserved and annotations.get(SPEC_HASH) != desired_hash
    active = (wl.get("spec") or {}).get("active", True)
    want = not suspend
    if want and not active and _KUEUE_DEACTIVATED.match((conds.get("Evicted") or {}).get("reason", "")):
        want = False  # Kueue deactivated it: not ours to undo
    evicted = _true(conds, "Evicted") and reserved
    return Plan(update_spec=update, active=want if want != active else None, release=evicted and not pods_active)
