"""ScoringJobs on a real cluster: the example job end to end, then the same job with a fault injected mid-run.

Every run scores the same rows of the volume (300,000 by default) and must produce exactly the predictions of a local
`tfscore run`: one row per id, none missing, none twice. Jobs run one after another (a driver takes a whole core of the
2-core node).
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from e2e_checks import check_done
from e2e_harness import (
    JOBS_NS,
    RELEASE,
    RELEASE_NS,
    TASKS,
    Image,
    Jobs,
    example_docs,
    job_manifest,
    timed,
)

from harness.common import wait_for

pytestmark = pytest.mark.e2e


def start_mid_run(jobs: Jobs, volume: Path, name: str) -> dict[str, Any]:
    """The example job under `name`, applied; returns once its tasks are writing (the moment to break something)."""
    job = job_manifest(name)
    jobs.apply(job)
    jobs.tasks_writing(name, volume, TASKS)
    return job


@pytest.mark.parametrize("change, expected", [
    ({"executor": {"instances": 0, "cores": 1, "memory": "lots"}, "output.mode": "sometimes"},
     ["spec.executor.instances", "should be greater than or equal to 1", "spec.executor.memory", "spec.output.mode",
      'Unsupported value: "sometimes"']),
    ({"onInvalidRow": "quarantine"}, ["spec.quarantineUri", "quarantineUri is required when onInvalidRow is quarantine"]),
], ids=["schema", "cel-rule"])
def test_invalid_scoringjob_is_refused(jobs: Jobs, change: dict[str, Any], expected: list[str]) -> None:
    """The API server itself refuses a bad manifest (the CRD's schema, then its CEL rules: the API server checks rules
    only on an object that passes the schema), naming each field in kubectl's message; nothing is stored."""
    bad = job_manifest("e2e-invalid")
    for key, value in change.items():
        parent, _, leaf = key.rpartition(".")
        (bad["spec"][parent] if parent else bad["spec"])[leaf] = value
    proc = jobs.apply(bad, check=False)
    assert proc.returncode != 0, proc.stdout
    for text in expected:
        assert text in proc.stderr, f"{text!r} not in kubectl's message:\n{proc.stderr}"
    assert jobs.get("e2e-invalid") is None, "the invalid ScoringJob was stored"


def test_example_job_succeeds_and_equals_a_local_run(jobs: Jobs, volume: Path, reference: dict[str, Any],
                                                    images: dict[str, Image]) -> None:
    """examples/e2e-job.yaml as is: Succeeded, status from the driver (progress annotation, termination message),
    `kubectl get sj` columns, and predictions equal to the local run's; driver and executors on the runtime image the
    chart pinned (by digest on the local harness)."""
    job = example_docs()["ScoringJob"]
    name, rows = job["metadata"]["name"], reference["result"]["rowsIn"]
    with timed("job: example"):
        jobs.apply(job)
        mid = jobs.progress_mid_run(name)
        running = jobs.table(name)
        executors = jobs.executor_pods(name)
        status = jobs.succeeded(name)
    assert mid["phase"] == "Running" and 0 < mid["progress"]["tasksDone"] < mid["progress"]["tasksTotal"], mid
    assert running["PHASE"] == "Running" and running["PROGRESS"].isdigit() and running["ROWS"].isdigit(), running
    done = jobs.table(name)
    assert (done["PHASE"], done["PROGRESS"], done["ROWS"], done["MODEL"]) == ("Succeeded", "100", str(rows), "/data/model"), \
        done
    check_done(jobs, job, status, volume, reference)
    driver = jobs.driver_pods(name)
    runtime = images["runtime"].ref
    assert executors and {p["spec"]["containers"][0]["image"] for p in [*driver, *executors]} == {runtime}, runtime
    annotation = json.loads(driver[0]["metadata"]["annotations"]["tfscore.io/progress"])
    assert annotation["rowsScored"] == rows and annotation["percent"] == 100, annotation
    terminated = driver[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and json.loads(terminated["message"])["rowsOut"] == rows, terminated


def test_executor_pod_deleted_mid_run(jobs: Jobs, volume: Path, reference: dict[str, Any]) -> None:
    """An executor pod deleted while tasks run: Spark replaces it and reruns its tasks; exact rows, no duplicates, and
    no driver attempt lost."""
    name = "e2e-executor-fault"
    selector = f"tfscore.io/job={name},tfscore.io/role=executor"
    with timed("job: executor pod deleted"):
        job = start_mid_run(jobs, volume, name)
        before = {p["metadata"]["name"] for p in jobs.pods(selector)}
        victim = jobs.executor_pods(name)[0]["metadata"]["name"]
        jobs("delete", "pod", victim, "--wait=false")
        wait_for(f"an executor replacing {victim}", lambda: {p["metadata"]["name"] for p in jobs.pods(selector)} - before,
                 timeout=120, interval=1.0)
        status = jobs.succeeded(name)
    check_done(jobs, job, status, volume, reference)
    executors = [p["metadata"]["name"] for p in jobs.pods(selector)]
    assert victim not in executors and len(executors) >= 2, f"expected a replacement executor: {executors}"


def test_driver_pod_deleted_mid_run(jobs: Jobs, volume: Path, reference: dict[str, Any]) -> None:
    """The driver pod deleted mid-run: the attempt fails (SIGTERM: tasks cancelled, staging discarded), the operator starts
    attempt 2, which succeeds; the output holds exactly its rows, nothing of attempt 1 in or beside it."""
    name = "e2e-driver-fault"
    with timed("job: driver pod deleted"):
        job = start_mid_run(jobs, volume, name)
        jobs("delete", "pod", f"{name}-driver-1", "--wait=false")
        status = jobs.succeeded(name)
    check_done(jobs, job, status, volume, reference, attempts=2)
    events = jobs("get", "events", f"--field-selector=involvedObject.name={name}",
                  "-o", "jsonpath={range .items[*]}{.reason}: {.message}{'\\n'}{end}").stdout
    assert "AttemptFailed" in events and "SIGTERM" in events, events


def test_operator_restarted_mid_run(jobs: Jobs, volume: Path, reference: dict[str, Any]) -> None:
    """The operator pod deleted mid-run: its successor picks the job up where it is; one driver pod, one attempt."""
    name = "e2e-operator-restart"
    operator = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
    with timed("job: operator restarted"):
        job = start_mid_run(jobs, volume, name)
        old = [p["metadata"]["name"] for p in json.loads(
            jobs.kubectl("-n", RELEASE_NS, "get", "pods", "-l", operator, "-o", "json").stdout)["items"]]
        jobs.kubectl("-n", RELEASE_NS, "delete", "pod", *old, "--wait=false")
        jobs.kubectl("-n", RELEASE_NS, "wait", "--for=delete", *(f"pod/{p}" for p in old), "--timeout=120s")
        jobs.kubectl("-n", RELEASE_NS, "wait", "--for=condition=Ready", "pod", f"-l={operator}", "--timeout=120s")
        status = jobs.succeeded(name)
    check_done(jobs, job, status, volume, reference)


def test_jobs_namespace_is_restricted(jobs: Jobs) -> None:
    """All of the above ran under Pod Security "restricted" (the namespace enforces it; the API server admitted the pods)."""
    labels = json.loads(jobs.kubectl("get", "namespace", JOBS_NS, "-o", "json").stdout)["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", labels


PROBE = Path(__file__).with_name("SparkRpcProbe.java")


@functools.cache
def _probe_classes(jars: str) -> str:
    """The probe compiled once (java's source-file mode compiles on every run: seconds each, while the job runs on)."""
    javac = shutil.which("javac")
    assert javac, "javac (a JDK) is needed for this check"
    out = tempfile.mkdtemp(prefix="tfscore-probe-")
    subprocess.run([javac, "-cp", jars, "-d", out, str(PROBE)], check=True, capture_output=True, timeout=300)
    return out


def spark_rpc(host: str, port: int, secret: bytes | None = None) -> str:
    """One RPC to a Spark endpoint from this host with Spark's own network client (the pinned pyspark jars):
    'RPC_LAYER: …' (nothing in the way) or 'AUTH_REQUIRED: …'. With `secret`: authenticated as the job's pods are."""
    import pyspark

    java = shutil.which("java")
    assert java, "java (a JDK: the probe is a source file) is needed for this check"
    jars = str(Path(pyspark.__file__).parent / "jars" / "*")
    classes = _probe_classes(jars)
    with tempfile.NamedTemporaryFile() as key:
        args = []
        if secret is not None:
            key.write(secret)
            key.flush()
            args = [key.name]
        proc = subprocess.run([java, "-cp", f"{classes}:{jars}", PROBE.stem, host, str(port), *args],
                              capture_output=True, text=True, timeout=180)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("RPC_LAYER", "AUTH_REQUIRED"))]
    assert lines, f"probe failed ({proc.returncode}): {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    return lines[-1]


def ui_kill(host: str) -> int:
    """The HTTP status of the UI's kill endpoint (302 to the jobs page when killing is enabled)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(f"http://{host}:4040/jobs/job/kill/?id=0", timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_spark_endpoints_are_closed_to_everyone_but_the_job(jobs: Jobs, volume: Path,
                                                           reference: dict[str, Any]) -> None:
    """Issue 11: the job's NetworkPolicy admits only the job's own pods (the API server holds it with exactly the
    selectors that pick its driver and executors); the driver's RPC and block-manager ports demand the job's secret
    (spark.authenticate + spark.network.crypto); the UI cannot kill. This harness's CNI is the plain bridge plugin:
    nothing enforces NetworkPolicy, so a client outside the job (this host, on the pod network) still reaches the
    ports, and Spark's authentication is what refuses it. The job itself still succeeds: the cut driver Role and the
    chart's admission policy allow every call Spark makes."""
    name = "e2e-endpoints"
    import pyspark

    _probe_classes(str(Path(pyspark.__file__).parent / "jars" / "*"))  # before the job starts: it is quick
    with timed("job: endpoints closed"):
        job = job_manifest(name)
        jobs.apply(job)
        # From the moment the driver runs (its RPC port opens before the executors register): the whole run is the
        # window, and a probe that cannot connect yet is retried until the port answers.
        driver = wait_for("the driver running", lambda: next((p for p in jobs.driver_pods(name)
                                                               if (p.get("status") or {}).get("podIP")
                                                               and p["status"].get("phase") == "Running"), None),
                          timeout=300, interval=1)
        ip = driver["status"]["podIP"]
        status = jobs.status(name)
        secret = json.loads(jobs("get", "secret", status["authSecret"], "-o", "json").stdout)
        key = base64.b64decode(secret["data"]["spark-auth-secret"])

        def reached(port: int, secret_key: bytes | None = None) -> str:
            out = ""
            for _ in range(60):
                out = spark_rpc(ip, port, secret_key)
                if "Failed to connect" not in out and "timed out" not in out:
                    return out
                time.sleep(1)
            return out

        inside = reached(7078, key)
        outside = {port: reached(port) for port in (7078, 7079)}
        kill = wait_for("the UI", lambda: ui_kill(ip), timeout=60, interval=1)
        policy = json.loads(jobs("get", "networkpolicy", f"{name}-pods", "-o", "json").stdout)
        selected = {p["metadata"]["name"] for p in jobs.pods(f"tfscore.io/job={name}")}
        everyone = {p["metadata"]["name"]: p["metadata"].get("labels") or {}
                    for p in json.loads(jobs("get", "pods", "-o", "json").stdout)["items"]}
        status = jobs.succeeded(name)
    check_done(jobs, job, status, volume, reference)
    for port, outcome in outside.items():
        assert outcome.startswith("AUTH_REQUIRED"), f"port {port} without the secret: {outcome}"
        assert "Failed to connect" not in outcome, f"port {port} was not reached (the driver had ended?): {outcome}"
    assert inside.startswith("RPC_LAYER"), f"with the job's secret the handshake passes: {inside}"
    assert kill in (404, 405), f"the UI's kill endpoint answered {kill}"
    own = {"matchLabels": {"tfscore.io/job": name}}
    assert policy["spec"] == {"podSelector": own, "policyTypes": ["Ingress"], "ingress": [{"from": [{
        "podSelector": own}]}]}, policy["spec"]
    assert driver["metadata"]["name"] in selected and len(selected) >= 2, selected
    assert selected == {n for n, labels in everyone.items() if labels.get("tfscore.io/job") == name}
    assert all(everyone[n].get("tfscore.io/role") in ("driver", "executor") for n in selected), "only job pods"
