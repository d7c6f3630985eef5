"""The schedule controller's API calls, on the operator's shared client (operator/kube.py), each response's Date header
fed to the ServerClock (clock.py): the schedules' time is the API server's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tfscore.api import common, scoringjob, scoringschedule
from tfscore.operator.kube import MERGE_PATCH, Conflict, Kube, create_or_adopt
from tfscore.operator.scoringschedule.clock import ServerClock


class ScheduleKube(Kube):
    def __init__(self, api: client.ApiClient, clock: ServerClock) -> None:
        super().__init__(api)
        self.clock = clock
        self.version = client.VersionApi(api)

    def _timed(self, call: Callable[[], Any]) -> Any:
        sent = time.monotonic()
        try:
            response = call()
        except ApiException as exc:
            self.clock.observe(sent, time.monotonic(), (exc.headers or {}).get("Date"))
            raise
        self.clock.observe(sent, time.monotonic(), response.headers.get("Date"))
        return response

    def _json(self, call: Callable[[], Any]) -> dict[str, Any]:
        return json.loads(self._timed(call).data)

    def probe(self) -> None:
        """GET /version: a cheap response whose Date header samples the server's clock."""
        self._json(lambda: self.version.get_code(_preload_content=False, _request_timeout=10))  # read: frees the connection

    def create_run(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the run's ScoringJob; on 409 return the one already there. → (object, created)."""
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        return create_or_adopt("ScoringJob", body, lambda: self._json(lambda: self.custom.create_namespaced_custom_object(
            common.GROUP, common.VERSION, ns, scoringjob.PLURAL, body, **self.kw)), lambda: self.get_job(ns, name))

    def get_schedule(self, ns: str, name: str) -> dict[str, Any] | None:
        try:
            return self._json(lambda: self.custom.get_namespaced_custom_object(
                common.GROUP, common.VERSION, ns, scoringschedule.PLURAL, name, **self.kw))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_schedule_status(self, ns: str, name: str, resource_version: str,
                              status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource, only if the schedule is still at `resource_version` (else Conflict)."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        try:
            return self._json(lambda: self.custom.patch_namespaced_custom_object_status(
                common.GROUP, common.VERSION, ns, scoringschedule.PLURAL, name, body, _content_type=MERGE_PATCH,
                **self.kw))
        except ApiException as exc:
            if exc.status in (404, 409):
                raise Conflict(f"ScoringSchedule {ns}/{name} changed or went away ({exc.status})") from None
            raise
