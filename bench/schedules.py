"""Schedule benchmark (`make bench-schedules`): 1,000 ScoringSchedules due in the same minute, each run's ScoringJob
created within 10 s of its due time?

Creates N ScoringSchedules (default 1,000) against a real API server with the real operator (`tfscore operator`, real
time: no test scaling), all `M H * * *` for one minute T far enough ahead that every schedule is created and reconciled
before it. At T every schedule is due at once; a watch on the namespace's ScoringJobs times when each run is first seen
(lateness = seen - T; this process and the API server share the machine's clock). The runs are ordinary ScoringJobs, so
the operator admits them too (ConfigMap, Service, driver pod): it holds a run's admission while other schedules are
still creating theirs (ScheduleController.admission_hold), and the time until every driver pod exists is reported
too. The API server's own view (run creationTimestamp - T, 1-second resolution) and the operator's
tfscore_schedule_start_lateness_seconds histogram are reported beside it.

Cluster: $TFSCORE_OPERATOR_KUBECONFIG, else the operator tier's own control plane (hack/cluster/up.sh control-plane in
its own state dir and ports), stopped again at the end. Writes bench/schedules.json. Run with PYTHONPATH=tests (as
`make bench-schedules` does) so the shared test harness imports.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import re
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from admission import ObjectWatch, PodWatch, cpu_seconds, operator_on_a_control_plane, percentiles

from harness.operator_process import Operator
from harness.schedules import parse, scoringschedule

HERE = Path(__file__).resolve().parent
TARGET_P99 = 10.0


def due_minute(lead: float) -> datetime:
    """The first whole minute at least `lead` seconds from now."""
    return datetime.fromtimestamp(math.ceil((time.time() + lead) / 60) * 60, UTC)


def operator_histogram(text: str) -> dict[str, float]:
    """tfscore_schedule_start_lateness_seconds as the operator measured it: bucket → count, sum, count."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'^tfscore_schedule_start_lateness_seconds_(bucket\{le="([^"]+)"\}|sum|count) (\S+)$', line)
        if m:
            out[m.group(2) or m.group(1)] = float(m.group(3))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--creators", type=int, default=4, help="client threads creating ScoringSchedules")
    parser.add_argument("--lead", type=float, default=90.0, help="seconds from the start to the due minute (at least)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("TFSCORE_WORKERS", "8")),
                        help="operator reconcile workers per kind (TFSCORE_WORKERS)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds after the due minute to wait for runs")
    parser.add_argument("--out", type=Path, default=HERE / "schedules.json")
    args = parser.parse_args()

    with operator_on_a_control_plane("schedules", args.workers, args.creators + 4) as (api, operator, pids):
        report = run(api, args, pids, operator)
    report["operator"]["log"] = str(operator.log)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"p50_s": report["lateness_s"].get("p50"), "p99_s": report["lateness_s"].get("p99"),
                      "within_10s": report["within_10s"], "met": report["met"]}), flush=True)
    print(f"wrote {args.out}")
    return 0


def run(api: Any, args: argparse.Namespace, pids: dict[str, int], operator: Operator) -> dict[str, Any]:
    from kubernetes import client

    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = f"bench-schedules-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns, "labels": {"tfscore.io/bench": "schedules"}}})
    core.create_namespaced_service_account(ns, {"metadata": {"name": "tfscore-driver"}})
    watch = ObjectWatch(functools.partial(custom.list_namespaced_custom_object, "tfscore.io", "v1alpha1", ns,
                                          "scoringjobs"), lambda job: job["metadata"]["name"])
    pods = PodWatch(core, ns)
    for w in (watch, pods):
        w.start()
        w.ready.wait(30)

    due = due_minute(args.lead)
    names = [f"s-{i:04d}" for i in range(args.schedules)]
    errors: list[str] = []

    def create(name: str) -> None:
        body = scoringschedule(name, schedule=f"{due.minute} {due.hour} * * *")
        try:
            custom.create_namespaced_custom_object("tfscore.io", "v1alpha1", ns, "scoringschedules", body,
                                                   _preload_content=False)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"{name}: {exc}")

    print(f"creating {len(names)} ScoringSchedules in {ns}, all due at {due:%H:%M:%S}Z", flush=True)
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=args.creators) as pool:
        list(pool.map(create, names))
    created_in = time.time() - t0

    def listed() -> list[dict[str, Any]]:
        return json.loads(custom.list_namespaced_custom_object("tfscore.io", "v1alpha1", ns, "scoringschedules",
                                                               _preload_content=False).data)["items"]

    while time.time() < due.timestamp() - 2:  # every schedule reconciled (its next run known) before it is due
        ready = sum(1 for s in listed() if (s.get("status") or {}).get("nextScheduleTime"))
        if ready == len(names) - len(errors):
            break
        time.sleep(1)
    ready_at = time.time()
    print(f"created in {created_in:.1f}s; {ready} reconciled {due.timestamp() - ready_at:.1f}s before they are due",
          flush=True)
    cpu0 = cpu_seconds(pids)
    end = due.timestamp() + args.timeout
    expected = len(names) - len(errors)
    while len(watch.seen) < expected and time.time() < end:
        time.sleep(0.2)
    watch.stop = True
    cpu1 = cpu_seconds(pids)
    while len(pods.seen) < expected and time.time() < end:  # and then admitted: each run's driver pod exists
        time.sleep(0.2)
    pods.stop = True

    runs = json.loads(custom.list_namespaced_custom_object("tfscore.io", "v1alpha1", ns, "scoringjobs",
                                                           _preload_content=False).data)["items"]
    per_schedule: dict[str, int] = {}
    for r in runs:
        label = r["metadata"]["labels"]["tfscore.io/schedule"]
        per_schedule[label] = per_schedule.get(label, 0) + 1
    lateness = [seen - due.timestamp() for seen in watch.seen.values()]
    server = [parse(r["metadata"]["creationTimestamp"]).timestamp() - due.timestamp() for r in runs]
    early = [r["metadata"]["name"] for r in runs if parse(r["metadata"]["creationTimestamp"]) < due]
    report = {
        "benchmark": "schedules: ScoringSchedules due in one minute -> each run's ScoringJob exists",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "operator": {"workers": args.workers},
        "namespace": ns,
        "schedules": len(names),
        "create_errors": len(errors),
        "created_in_s": round(created_in, 1),
        "reconciled_before_due_s": round(due.timestamp() - ready_at, 1),
        "due": due.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "runs": len(runs),
        "schedules_with_one_run": sum(1 for n in per_schedule.values() if n == 1),
        "schedules_with_more_runs": sum(1 for n in per_schedule.values() if n > 1),
        "created_before_due": len(early),
        "lateness_s": percentiles(lateness),
        "within_10s": sum(1 for x in lateness if x <= TARGET_P99),
        "server_lateness_s": percentiles(server),
        "driver_pod_after_due_s": percentiles([seen - due.timestamp() for seen in pods.seen.values()]),
        "driver_pods": len(pods.seen),
        "operator_lateness_histogram": operator_histogram(operator.metrics()),
        "cpu_seconds_from_due": {k: round(cpu1[k] - cpu0.get(k, 0.0), 1) for k in cpu1},
        "target": {"p99_lateness_s": TARGET_P99},
    }
    report["met"] = {"p99_lateness_s": report["lateness_s"].get("p99", math.inf) <= TARGET_P99,
                     "every_schedule_one_run": report["schedules_with_one_run"] == expected and not early}
    print(f"{len(watch.seen)}/{expected} runs; lateness p50 {report['lateness_s'].get('p50')}s "
          f"p99 {report['lateness_s'].get('p99')}s max {report['lateness_s'].get('max')}s; "
          f"CPU seconds: {report['cpu_seconds_from_due']}", flush=True)
    if errors:
        print(f"{len(errors)} create errors, first: {errors[0]}", flush=True)
    return report


if __name__ == "__main__":
    sys.exit(main())
