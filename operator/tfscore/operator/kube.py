"""The few Kubernetes API calls the operator makes, on one shared (thread-safe, pooled) API client.

Bodies go out and come back as plain dicts (`_preload_content=False`: no model (de)serialization on the hot path).
`create` is create-if-absent: 409 returns the existing object so the caller can adopt it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tfscore.api import common, scoringjob, scoringpolicy

MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = 30


class Conflict(Exception):
    """A precondition (resourceVersion, uid) did not hold: re-read and decide again."""


class Rejected(Exception):
    """The API server refused an object for a reason that retrying now will not fix (403, 422, …)."""


def _message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body)["message"]
    except (TypeError, ValueError, KeyError):
        return f"{exc.status} {exc.reason}"


def api_client(pool_size: int) -> client.ApiClient:
    """One ApiClient for the whole process: in-cluster config, else $KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    conf = client.Configuration.get_default_copy()
    conf.connection_pool_maxsize = max(4, pool_size)
    return client.ApiClient(conf)


def _json(response: Any) -> dict[str, Any]:
    return json.loads(response.data)


def _drain(response: Any) -> None:
    """Read a response we do not need: only a fully read response gives its connection back to the pool (unread, each
    call leaves one behind and the next opens a new TLS connection: measured, the operator's top CPU cost when it
    posts many events)."""
    response.data  # noqa: B018 - reading it is the point


def create_or_adopt(kind: str, body: Mapping[str, Any], create: Callable[[], dict[str, Any]],
                    get: Callable[[], dict[str, Any] | None], refusals: Mapping[int, str] | None = None,
                    adopt: bool = True) -> tuple[dict[str, Any], bool]:
    """Create; on 409 return the object already there (deterministic names: a crash between create and record is
    harmless). → (object, created). 400/403/404/422: Rejected (retrying now will not help), worded by `refusals` for
    a status it names; gone between the 409 and the read: Conflict (the caller decides again). adopt=False: a 409 is
    raised as it is (a generated name taken, or an object the operator may not read)."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta.get("name") or meta.get("generateName", "")
    try:
        return create(), True
    except ApiException as exc:
        if exc.status in (400, 403, 404, 422):
            why = (refusals or {}).get(exc.status) or _message(exc)
            raise Rejected(f"cannot create {kind} {name}: {why}") from None
        if exc.status != 409 or not adopt:
            raise
    existing = get()
    if existing is None:  # deleted between our create and get: let the caller decide again
        raise Conflict(f"{kind} {ns}/{name} vanished while being adopted")
    return existing, False


def _unless_404(read: Callable[[], Any]) -> dict[str, Any] | None:
    try:
        return _json(read())
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.networking = client.NetworkingV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.kw = {"_preload_content": False, "_request_timeout": TIMEOUT}

    # ---- children (ConfigMap, Service, Pod, NetworkPolicy; Secret: create only, with generateName)
    def create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create; on 409 return the object already there. → (object, created)."""
        kind, ns = body["kind"], body["metadata"]["namespace"]
        create = {"ConfigMap": self.core.create_namespaced_config_map, "Service": self.core.create_namespaced_service,
                  "Pod": self.core.create_namespaced_pod, "Secret": self.core.create_namespaced_secret,
                  "NetworkPolicy": self.networking.create_namespaced_network_policy}[kind]
        return create_or_adopt(kind, body, lambda: _json(create(ns, body, **self.kw)),
                               lambda: self.get(kind, ns, body["metadata"]["name"]),
                               adopt=kind != "Secret")  # never read Secrets: a taken generated name is tried again

    def get(self, kind: str, ns: str, name: str) -> dict[str, Any] | None:
        read = {"ConfigMap": self.core.read_namespaced_config_map, "Service": self.core.read_namespaced_service,
                "Pod": self.core.read_namespaced_pod,
                "NetworkPolicy": self.networking.read_namespaced_network_policy}[kind]
        return _unless_404(lambda: read(name, ns, **self.kw))

    def delete_config_map(self, ns: str, name: str, uid: str) -> None:
        try:
            self.core.delete_namespaced_config_map(name, ns, body={"preconditions": {"uid": uid}}, **self.kw)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def get_policy(self, ns: str, name: str) -> dict[str, Any] | None:
        """The namespace's ScoringPolicy, or None (not there, or its CRD not installed)."""
        return _unless_404(lambda: self.custom.get_namespaced_custom_object(
            common.GROUP, common.VERSION, ns, scoringpolicy.PLURAL, name, **self.kw))

    def delete_pod(self, ns: str, name: str) -> None:
        try:
            _drain(self.core.delete_namespaced_pod(name, ns, propagation_policy="Background", **self.kw))
        except ApiException as exc:
            if exc.status != 404:
                raise

    # ---- the ScoringJob
    def get_job(self, ns: str, name: str) -> dict[str, Any] | None:
        return _unless_404(lambda: self.custom.get_namespaced_custom_object(
            common.GROUP, common.VERSION, ns, scoringjob.PLURAL, name, **self.kw))

    def patch_job_status(self, ns: str, name: str, resource_version: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource, only if the object is still at `resource_version` (else Conflict)."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        try:
            return _json(self.custom.patch_namespaced_custom_object_status(
                common.GROUP, common.VERSION, ns, scoringjob.PLURAL, name, body, _content_type=MERGE_PATCH, **self.kw))
        except ApiException as exc:
            if exc.status in (404, 409):
                raise Conflict(f"ScoringJob {ns}/{name} changed or went away ({exc.status})") from None
            raise

    def delete_job(self, ns: str, name: str, uid: str) -> None:
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        try:
            _drain(self.custom.delete_namespaced_custom_object(common.GROUP, common.VERSION, ns, scoringjob.PLURAL, name,
                                                               body=body, **self.kw))
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # ---- events
    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str, component: str) -> None:
        meta = obj["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta.get("uid")},
            "type": type_,
            "reason": reason,
            "message": message if len(message) <= 1024 else message[:1023] + "…",
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": socket.gethostname()[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            _drain(self.core.create_namespaced_event(meta["namespace"], event, **self.kw))
        except ApiException as exc:
            if exc.status == 403 and "being terminated" in _message(exc):
                return  # the namespace is going away, and the object with it
            raise RuntimeError(f"event {reason} on {meta['namespace']}/{meta['name']}: {_message(exc)}") from None
