"""Queued ScoringJobs on the real cluster with a real Kueue: two jobs under a ClusterQueue quota for one, the second at a
higher priority arriving while the first scores. Kueue preempts the first (its driver is stopped: nothing committed),
the second runs, then the first runs again; both end with exactly the local run's rows, and nothing of the preempted
attempt is in or beside the output. The timeline of both is recorded in the e2e timings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_checks import check_done
from e2e_harness import JOBS_NS, TASKS, TIMINGS, Jobs, job_manifest, timed

from harness.common import skip_or_fail
from harness.kube import Kubectl

pytestmark = pytest.mark.e2e

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
NAME = "tfscore-e2e"
LOW, HIGH = "tfscore-e2e-low", "tfscore-e2e-high"
# One job requests 1.5 cpu (driver 1 + two executors at spark.kubernetes.executor.request.cores 250m) and
# 4299Mi (three pods of 1g + 40% overhead): the quota admits one at a time.
QUOTA = {"cpu": "2", "memory": "6Gi"}


def kueue_objects() -> list[dict[str, Any]]:
    api = "kueue.x-k8s.io/v1beta2"
    return [
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": LOW}, "value": 100},
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": HIGH}, "value": 1000},
        {"apiVersion": api, "kind": "ResourceFlavor", "metadata": {"name": NAME},
         "spec": {"nodeLabels": {"kubernetes.io/os": "linux"}}},
        {"apiVersion": api, "kind": "ClusterQueue", "metadata": {"name": NAME}, "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": JOBS_NS}},
            "preemption": {"withinClusterQueue": "LowerPriority"},
            "resourceGroups": [{"coveredResources": ["cpu", "memory"], "flavors": [{"name": NAME, "resources": [
                {"name": r, "nominalQuota": q} for r, q in QUOTA.items()]}]}]}},
        {"apiVersion": api, "kind": "LocalQueue", "metadata": {"name": "scoring", "namespace": JOBS_NS},
         "spec": {"clusterQueue": NAME}},
    ]


@pytest.fixture(scope="module")
def queue(kueue: str, jobs: Jobs, kubectl: Kubectl) -> Iterator[str]:
    if kueue.startswith("failed"):
        pytest.fail(f"Kueue did not start: {kueue}", pytrace=False)
    if kueue:
        skip_or_fail("e2e", kueue)
    docs = kueue_objects()
    kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
    kubectl("wait", "--for=condition=Active", f"clusterqueue/{NAME}", "--timeout=60s")
    try:
        yield "scoring"
    finally:  # the namespace goes with the release; Kueue keeps a ClusterQueue until its Workloads are gone
        for kind, name in [("clusterqueue", NAME), ("resourceflavor", NAME), ("priorityclass", LOW),
                           ("priorityclass", HIGH)]:
            kubectl("delete", kind, name, "--ignore-not-found", "--wait=false", check=False)


def workload(jobs: Jobs, name: str) -> dict[str, Any]:
    items = json.loads(jobs("get", "workloads.kueue.x-k8s.io", "-l", f"tfscore.io/job={name}", "-o", "json").stdout)[
        "items"]
    return items[0] if items else {}


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def test_two_jobs_under_a_one_job_quota_the_preempted_one_runs_again(jobs: Jobs, volume: Path, reference: Any,
                                                                    queue: str) -> None:
    low = job_manifest("e2e-queued-low", priorityClassName=LOW)
    high = job_manifest("e2e-queued-high", priorityClassName=HIGH)
    for job in (low, high):
        job["metadata"]["labels"] = {QUEUE_LABEL: queue}
    t0, seen = time.monotonic(), []

    def mark(what: str) -> None:
        seen.append(what)
        TIMINGS[f"kueue: {what}"] = round(time.monotonic() - t0, 1)

    with timed("job: two queued, one preempted"):
        jobs.apply(low)
        mark("low created")
        jobs.wait("e2e-queued-low", "admitted", lambda s: s.get("attempts") == 1, timeout=60, interval=0.5)
        mark("low admitted, attempt 1 started")
        jobs.wait("e2e-queued-low", "Running", lambda s: s.get("phase") == "Running", timeout=300, interval=0.5)
        mark("low running")
        jobs.tasks_writing("e2e-queued-low", volume, TASKS)
        mark("low scoring (tasks writing)")
        jobs.apply(high)
        mark("high created")
        evicted = jobs.wait("e2e-queued-low", "Queued after preemption", lambda s: s.get("phase") == "Queued" and s,
                            timeout=60, interval=0.5)
        mark("low preempted (Queued)")
        jobs.wait("e2e-queued-high", "admitted", lambda s: s.get("attempts") == 1, timeout=180, interval=0.5)
        mark("high admitted, attempt 1 started")
        assert not [p for p in jobs.driver_pods("e2e-queued-low") if p["metadata"]["name"].endswith("-1")], \
            "high started while the preempted driver still existed"
        jobs.wait("e2e-queued-high", "Running", lambda s: s.get("phase") == "Running", timeout=300, interval=0.5)
        mark("high running")
        high_done = jobs.succeeded("e2e-queued-high")
        mark("high succeeded")
        jobs.wait("e2e-queued-low", "readmitted", lambda s: s.get("attempts") == 2, timeout=120, interval=0.5)
        mark("low readmitted, attempt 2 started")
        jobs.wait("e2e-queued-low", "Running", lambda s: s.get("phase") == "Running" or s.get("phase") == "Succeeded",
                  timeout=300, interval=0.5)
        mark("low running again")
        low_done = jobs.succeeded("e2e-queued-low")
        mark("low succeeded")

    # the status says why it waits (Kueue's preemption message); the attempt was stopped, not failed
    assert evicted.get("failed", 0) == 0 and "Preempted to accommodate" in evicted["message"], evicted
    assert condition({"status": evicted}, "Running").get("reason") == "Evicted", evicted
    check_done(jobs, high, high_done, volume, reference)
    # attempts 2, failed 0: the preempted attempt is no failure; exact rows, nothing of attempt 1 in or beside the output
    check_done(jobs, low, low_done, volume, reference, attempts=2, failed=0)
    events = jobs("get", "events", "--field-selector=involvedObject.name=e2e-queued-low",
                  "-o", "jsonpath={range .items[*]}{.reason}: {.message}{'\\n'}{end}").stdout
    assert "Evicted" in events and "Queued" in events and "AttemptFailed" not in events, events
    for name in ("e2e-queued-low", "e2e-queued-high"):
        wl = workload(jobs, name)
        assert condition(wl, "Finished").get("status") == "True", (name, wl.get("status"))
    low_wl = workload(jobs, "e2e-queued-low")
    evictions = (low_wl.get("status") or {}).get("schedulingStats", {}).get("evictions") or []
    assert [e["reason"] for e in evictions] == ["Preempted"], evictions
    driver = jobs.driver_pods("e2e-queued-low")[0]
    assert driver["spec"]["nodeSelector"]["kubernetes.io/os"] == "linux", "the flavor's node labels"
    assert driver["spec"]["priorityClassName"] == LOW and driver["spec"]["priority"] == 100
    print("kueue timeline (s): " + ", ".join(f"{w} {TIMINGS[f'kueue: {w}']}" for w in seen))
