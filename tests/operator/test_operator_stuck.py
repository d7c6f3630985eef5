"""No stuck states (issue 11): an object the API server refuses for good ends the job Failed after
startupTimeoutSeconds with the API server's message; a driver-pod deletion the watch never reported is still seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from harness.operator_process import FAKE_IMAGE, Operator
from harness.scoringjobs import Cluster, scoringjob
from tfscore.operator.config import OperatorConfig
from tfscore.operator.controller import Controller
from tfscore.operator.kube import Kube
from tfscore.operator.metrics import Metrics
from tfscore.operator.scoringjob.reconcile import Context


@pytest.mark.parametrize("case,change,words", [
    ("no-account", {}, 'serviceaccount "tfscore-driver" not found'),
    ("invalid-pod", {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}}]},
     "valueFrom.fieldRef.fieldPath: Invalid value: \"spec.nope\""),
])
def test_a_permanently_refused_create_fails_after_the_startup_timeout(k8s: Cluster, case: str, change: dict,
                                                                      words: str) -> None:
    if case == "no-account":
        k8s.core.delete_namespaced_service_account("tfscore-driver", k8s.ns)
    k8s.create(scoringjob(case, startupTimeoutSeconds=4, **change))
    st = k8s.wait_phase(case, "Pending")
    pending = _until(f"{case} Pending with the API server's message",
                     lambda: (s := k8s.status(case)).get("message", "").startswith("cannot create Pod") and s)
    assert words in pending["message"] and pending.get("startTime"), pending
    st = k8s.wait_phase(case, "Failed", timeout=20)
    cond = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert cond["reason"] == "CreateRejected" and "startupTimeoutSeconds (4s)" in cond["message"]
    assert words in cond["message"]
    assert st["startTime"] == pending["startTime"], "the clock ran from the persisted start"
    assert not k8s.driver_pods(case)
    k8s.wait_event(case, "CreateRejected")


def _until(what: str, check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def test_a_deletion_the_watch_missed_is_seen_by_the_resync(k8s: Cluster, operator: Operator, api: Any) -> None:
    """kopf relists after a watch restart (410 Gone) without reporting what was deleted in the gap. The controller is
    driven here exactly as kopf drives it, against the real API server, and the pod's DELETED event is never delivered:
    the periodic re-read of the driver pod (TFSCORE_RESYNC_SECONDS) must find it gone and start attempt 2."""
    operator.stop()  # this test's controller is the only one acting
    try:
        asyncio.run(_missed_deletion(k8s, api))
    finally:
        operator.start()


async def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(check)
        if got:
            return got
        await asyncio.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


async def _missed_deletion(k8s: Cluster, api: Any) -> None:
    config = OperatorConfig(runtime_image=FAKE_IMAGE, resync_seconds=2, backoff_base_seconds=0.5,
                            backoff_max_seconds=1)
    events: list[Any] = []
    controller = Controller(Context(kube=Kube(api), config=config, metrics=Metrics(),
                                    post_event=lambda obj, event: events.append(event)), workers=2)
    await controller.start()
    try:
        body = await asyncio.to_thread(k8s.create, scoringjob("gap"))
        controller.job_event("ADDED", body)
        pod = await _wait("driver pod 1", lambda: next(iter(k8s.driver_pods("gap")), None), 20)
        await asyncio.to_thread(k8s.run_pod, "gap-driver-1")
        fresh = await asyncio.to_thread(k8s.core.read_namespaced_pod, "gap-driver-1", k8s.ns)
        controller.pod_event("MODIFIED", k8s.core.api_client.sanitize_for_serialization(fresh))  # as the watch would
        await _wait("Running", lambda: k8s.status("gap").get("phase") == "Running", 20)
        started = time.monotonic()
        await asyncio.to_thread(k8s.core.delete_namespaced_pod, pod.metadata.name, k8s.ns, grace_period_seconds=0)
        # … and no DELETED event: the watch missed it.
        await _wait("attempt 2 after the missed deletion", lambda: any(
            p.metadata.name == "gap-driver-2" for p in k8s.driver_pods("gap")), 30)
        noticed = time.monotonic() - started
        assert noticed < config.resync_seconds + 5, f"noticed after {noticed:.1f}s"
        st = k8s.status("gap")
        assert st["attempts"] == 2 and st["failed"] == 1
        assert any(e.reason == "AttemptFailed" and "deleted" in e.message for e in events), events
    finally:
        await controller.stop()
