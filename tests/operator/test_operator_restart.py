"""The operator killed (SIGKILL) and restarted: it resumes from what the API server holds, creates no duplicate pods,
and the statuses converge; plus its metrics and liveness endpoints."""

from __future__ import annotations

import json
import re
import time

from harness.common import wait_for
from harness.operator_process import Operator
from harness.scoringjobs import Cluster, scoringjob

RESULT = {"rowsIn": 5, "rowsOut": 5, "seconds": 1.0, "rowsPerSecond": 5.0, "outputUri": "s3a://out/"}


def pods_by_job(k8s: Cluster) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pod in k8s.core.list_namespaced_pod(k8s.ns, label_selector="tfscore.io/role=driver").items:
        out.setdefault(pod.metadata.labels["tfscore.io/job"], []).append(pod.metadata.name)
    return {job: sorted(names) for job, names in out.items()}


def test_killed_mid_run_resumes_without_duplicates(k8s: Cluster, operator: Operator):
    k8s.create(scoringjob("a"))
    k8s.create(scoringjob("b", backoffLimit=1))
    k8s.wait_pod("a")
    k8s.wait_pod("b")
    k8s.run_pod("a-driver-1")
    k8s.wait_phase("a", "Running")

    operator.kill()
    # While no operator runs: a succeeds, b's driver fails, c is created, d is created and deleted.
    k8s.finish_pod("a-driver-1", 0, json.dumps(RESULT))
    k8s.finish_pod("b-driver-1", 1, "executor lost")
    k8s.create(scoringjob("c"))
    k8s.create(scoringjob("d"))
    k8s.delete("d")  # no finalizer of ours: deletion never waits for the operator
    operator.start()

    k8s.wait_phase("a", "Succeeded")
    k8s.wait_pod("b", 2)
    k8s.wait_pod("c", 1)
    time.sleep(2)  # room for a duplicate to appear, were there one
    assert pods_by_job(k8s) == {"a": ["a-driver-1"], "b": ["b-driver-1", "b-driver-2"], "c": ["c-driver-1"]}
    assert k8s.status("b")["attempts"] == 2 and k8s.status("b")["failed"] == 1
    assert k8s.status("c")["attempts"] == 1
    assert "d" not in pods_by_job(k8s)


def test_killed_during_an_admission_burst_adopts_instead_of_duplicating(k8s: Cluster, operator: Operator):
    names = [f"burst-{i}" for i in range(20)]
    for name in names:
        k8s.create(scoringjob(name))
    time.sleep(0.3)
    operator.kill()  # some admitted, some half-admitted (pod created, status not yet written), some not at all
    operator.start()
    wait_for("every job admitted once", lambda: all(
        k8s.status(n).get("attempts") == 1 and k8s.status(n).get("driverPod") == f"{n}-driver-1" for n in names),
        timeout=30)
    assert pods_by_job(k8s) == {n: [f"{n}-driver-1"] for n in names}


def test_metrics_and_liveness(k8s: Cluster, operator: Operator):
    k8s.create(scoringjob("m"))
    k8s.wait_pod("m")
    k8s.finish_pod("m-driver-1", 0, json.dumps(RESULT))
    k8s.wait_phase("m", "Succeeded")

    def sample(text: str, name: str, labels: str = "") -> float:
        found = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
        return float(found.group(1)) if found else -1.0

    def converged() -> str | None:
        text = operator.metrics()
        return text if sample(text, "tfscore_jobs_succeeded_total") >= 1 else None

    text = wait_for("metrics", converged)
    assert sample(text, "tfscore_jobs_started_total") >= 1
    assert sample(text, "tfscore_rows_scored_total") >= 5
    assert sample(text, "tfscore_admission_latency_seconds_count") >= 1
    assert sample(text, "tfscore_job_duration_seconds_count") >= 1
    assert sample(text, "tfscore_jobs", '{phase="Succeeded"}') >= 1
    assert operator.healthy()
