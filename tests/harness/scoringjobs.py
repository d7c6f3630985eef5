"""ScoringJob manifests for tests, and a test-side view of a namespace that creates and reads ScoringJobs and plays the
kubelet's part on driver pods (the operator tier runs no kubelet: pod status is written through the API, as a kubelet
would write it)."""

from __future__ import annotations

import json
import time
from typing import Any

from harness.common import wait_for


def scoringjob(name: str, **spec: Any) -> dict[str, Any]:
    base = {"model": {"uri": "s3a://models/risk/"}, "input": {"uri": "s3a://in/"}, "output": {"uri": f"s3a://out/{name}/"}}
    return {"apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringJob", "metadata": {"name": name},
            "spec": {k: v for k, v in {**base, **spec}.items() if v is not None}}  # None: drop a base field


class Cluster:
    """Thin test-side view: create/read ScoringJobs, list children, and play the kubelet on driver pods."""

    def __init__(self, core: Any, custom: Any, namespace: str) -> None:
        from kubernetes import client

        self.core, self.custom, self.ns = core, custom, namespace
        self.networking = client.NetworkingV1Api(core.api_client)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringjobs", body)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringjobs", name)

    def patch(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringjobs", name,
                                                          {"spec": spec})

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object("tfscore.io", "v1alpha1", self.ns, "scoringjobs", name)

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def wait_phase(self, name: str, phase: str, timeout: float = 20) -> dict[str, Any]:
        return wait_for(f"{name} phase {phase}",
                        lambda: (s := self.status(name)).get("phase") == phase and s, timeout=timeout)

    def driver_pods(self, name: str) -> list[Any]:
        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"tfscore.io/job={name},tfscore.io/role=driver")
        return sorted(pods.items, key=lambda p: p.metadata.name)

    def wait_pod(self, name: str, attempt: int = 1, timeout: float = 20) -> Any:
        pod_name = f"{name}-driver-{attempt}"
        return wait_for(f"driver pod {pod_name}",
                        lambda: next((p for p in self.driver_pods(name) if p.metadata.name == pod_name), None),
                        timeout=timeout)

    def events(self, name: str) -> list[Any]:
        evs = self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={name}")
        return sorted(evs.items, key=lambda e: (e.last_timestamp or e.event_time or 0, e.metadata.name))

    def wait_event(self, name: str, reason: str, timeout: float = 20) -> Any:
        return wait_for(f"event {reason} on {name}",
                        lambda: next((e for e in self.events(name) if e.reason == reason), None), timeout=timeout)

    # ---- the kubelet's part
    def _container_status(self, pod_name: str, state: dict[str, Any], ready: bool = False) -> dict[str, Any]:
        return {"name": "driver", "image": "localhost/tfscore/runtime", "imageID": "", "ready": ready,
                "restartCount": 0, "started": "running" in state, "state": state}

    def set_pod_status(self, pod_name: str, status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(pod_name, self.ns, {"status": status})

    def run_pod(self, pod_name: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.set_pod_status(pod_name, {
            "phase": "Running", "podIP": "10.244.0.10", "startTime": now,
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
            "containerStatuses": [self._container_status(pod_name, {"running": {"startedAt": now}}, ready=True)]})

    def finish_pod(self, pod_name: str, exit_code: int, message: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        state = {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                                "message": message, "startedAt": now, "finishedAt": now}}
        self.set_pod_status(pod_name, {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": [self._container_status(pod_name, state)]})

    def wait_pull_pod(self, pod_name: str, reason: str = "ImagePullBackOff") -> None:
        self.set_pod_status(pod_name, {
            "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [self._container_status(pod_name, {"waiting": {
                "reason": reason, "message": 'Back-off pulling image "localhost/tfscore/runtime"'}})]})

    def unschedulable_pod(self, pod_name: str) -> None:
        self.set_pod_status(pod_name, {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}]})

    def annotate_progress(self, pod_name: str, progress: dict[str, int]) -> None:
        self.core.patch_namespaced_pod(pod_name, self.ns, {"metadata": {"annotations": {
            "tfscore.io/progress": json.dumps(progress)}}})
