"""The Kueue API calls of the operator (Workloads, ResourceFlavors) and the PriorityClass reads a Workload's priority
needs, on the operator's shared API client. Same conventions as kube.py: plain dicts, create-if-absent, Conflict on a
failed precondition, Rejected when retrying now will not help."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tfscore.operator.kube import MERGE_PATCH, TIMEOUT, Conflict, Rejected, _json, _message, _unless_404, create_or_adopt
from tfscore.operator.scoringjob.queueing import FIELD_MANAGER, GROUP, VERSION, WORKLOADS

APPLY_PATCH = "application/apply-patch+yaml"


class KueueApi:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.scheduling = client.SchedulingV1Api(api)
        self.kw = {"_preload_content": False, "_request_timeout": TIMEOUT}

    def served(self) -> bool:
        """Whether the API server serves kueue.x-k8s.io/v1beta2 workloads (Kueue >= 0.15 installed)."""
        try:
            found = _json(self.custom.get_api_resources(GROUP, VERSION, **self.kw))
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return any(r.get("name") == WORKLOADS for r in found.get("resources") or [])

    # ---- Workloads
    def create_workload(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create; on 409 return the Workload already there. → (object, created)."""
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        return create_or_adopt(
            "Workload", body,
            lambda: _json(self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, WORKLOADS, body, **self.kw)),
            lambda: self.get_workload(ns, name),
            refusals={404: f"the API {GROUP}/{VERSION} workloads is not served (is Kueue >= 0.15 installed?)"})

    def get_workload(self, ns: str, name: str) -> dict[str, Any] | None:
        return _unless_404(lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, WORKLOADS, name,
                                                                            **self.kw))

    def patch_workload(self, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the Workload (spec.active, pod sets); a metadata.resourceVersion in `patch` is a precondition."""
        return self._merge(self.custom.patch_namespaced_custom_object, ns, name, patch)

    def patch_workload_status(self, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource, guarded by the metadata.resourceVersion in `patch` (else Conflict)."""
        return self._merge(self.custom.patch_namespaced_custom_object_status, ns, name, patch)

    def _merge(self, call: Any, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        try:
            return _json(call(GROUP, VERSION, ns, WORKLOADS, name, patch, _content_type=MERGE_PATCH,
                              field_manager=FIELD_MANAGER, **self.kw))
        except ApiException as exc:
            if exc.status in (404, 409):
                raise Conflict(f"Workload {ns}/{name} changed or went away ({exc.status})") from None
            if exc.status in (400, 403, 422):
                raise Rejected(f"cannot update Workload {name}: {_message(exc)}") from None
            raise

    def apply_workload_status(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Server-side apply to the status subresource as FIELD_MANAGER (None: the Workload is gone)."""
        meta = body["metadata"]
        return _unless_404(lambda: self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, meta["namespace"], WORKLOADS, meta["name"], body, _content_type=APPLY_PATCH,
            field_manager=FIELD_MANAGER, force=True, **self.kw))

    def delete_workload(self, ns: str, name: str, uid: str) -> None:
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, WORKLOADS, name, body=body, **self.kw)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # ---- what a Workload refers to
    def resource_flavor(self, name: str) -> dict[str, Any] | None:
        return _unless_404(lambda: self.custom.get_cluster_custom_object(GROUP, VERSION, "resourceflavors", name,
                                                                         **self.kw))

    def priority_class(self, name: str | None) -> tuple[str, int] | None:
        """(name, value) of the named PriorityClass, or of the cluster's globalDefault one when `name` is None (what
        the Priority admission plugin gives a pod without priorityClassName); None when there is no default."""
        if name:
            found = _unless_404(lambda: self.scheduling.read_priority_class(name, **self.kw))
            if found is None:
                raise Rejected(f"PriorityClass {name} (spec.priorityClassName) does not exist")
            return name, int(found.get("value") or 0)
        classes = _json(self.scheduling.list_priority_class(**self.kw)).get("items") or []
        default = next((c for c in classes if c.get("globalDefault")), None)
        return (default["metadata"]["name"], int(default.get("value") or 0)) if default else None
