"""ScoringSchedule's CEL rules on the real API server: admission refuses what tfscore.api.schedule_time/_template refuse,
with the same message, on a throwaway CRD that carries only SCHEDULE_RULE, TIME_ZONE_RULE and TEMPLATE_RULE (server-side
dry run: nothing is stored). The documented exceptions are asserted as such."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from harness.common import wait_for
from tfscore.api.schedule_template import TEMPLATE_RULE, check_template
from tfscore.api.schedule_time import SCHEDULE_RULE, TIME_ZONE_RULE, load_zone, parse_schedule

GROUP, PLURAL = "probe.tfscore.io", "cronprobes"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"plural": PLURAL, "singular": "cronprobe", "kind": "CronProbe"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {"spec": {"type": "object", "properties": {
                     "schedule": {"type": "string", "maxLength": 256, "x-kubernetes-validations": [SCHEDULE_RULE]},
                     "timeZone": {"type": "string", "maxLength": 64, "x-kubernetes-validations": [TIME_ZONE_RULE]},
                     "template": {"type": "string", "maxLength": 16384, "x-kubernetes-validations": [TEMPLATE_RULE]},
                 }}}}}}]},
}


@pytest.fixture(scope="module")
def admit(api: Any) -> Iterator[Callable[[str, str], str | None]]:
    from kubernetes import client

    ext, custom = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    try:
        ext.delete_custom_resource_definition(CRD["metadata"]["name"])
        wait_for("the old probe CRD to go", lambda: not ext.list_custom_resource_definition(
            field_selector=f"metadata.name={CRD['metadata']['name']}").items)
    except ApiException as exc:
        if exc.status != 404:
            raise
    ext.create_custom_resource_definition(CRD)  # the API server's cost estimator accepts the rules: no exception
    wait_for("the probe CRD to be established", lambda: any(
        c.type == "Established" and c.status == "True"
        for c in ext.read_custom_resource_definition(CRD["metadata"]["name"]).status.conditions or []))

    def create(field: str, value: str) -> str | None:
        body = {"apiVersion": f"{GROUP}/v1", "kind": "CronProbe", "metadata": {"name": "p"}, "spec": {field: value}}
        for _ in range(50):  # the CRD's schema is served a moment after Established
            try:
                custom.create_namespaced_custom_object(GROUP, "v1", "default", PLURAL, body, dry_run="All")
                return None
            except ApiException as exc:
                if exc.status == 404:
                    time.sleep(0.2)
                    continue
                assert exc.status == 422, exc.body
                return json.loads(exc.body)["message"]
        raise AssertionError("the probe CRD is never served")

    try:
        yield create
    finally:
        ext.delete_custom_resource_definition(CRD["metadata"]["name"])


def python_error(check: Callable[[str], Any], value: str) -> str | None:
    try:
        check(value)
        return None
    except ValueError as exc:
        return str(exc)


SCHEDULES = ["*/15 * * * *", "0 9 * * MON-FRI", "1-30/5 0 1,15 jan-Mar ?", "@daily", "  @hourly ", "0 0 * * 7",
             "0\t0 * * *", "61 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "0,61 * * * *",
             "1,,2 * * * *", "? * * * *", "*/0 * * * *", "*/1000 * * * *", "@every 1h", "@Daily", "TZ=UTC 0 * * * *",
             "CRON_TZ=Europe/Berlin 0 * * * *", "* * * *", "* * * * * *", ""]
ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "Local", "local",
         "+05:00", "../etc", "Europe/Berlin ", "-Foo", ""]
TEMPLATES = ["s3a://out/dt=${scheduledTime:%Y-%m-%d}/", "dt = '${scheduledTime-1d:%Y-%m-%d}' AND h = ${scheduledTime-1h:%H}",
             "${scheduledTime+30m}", "$${literal}", "$$${scheduledTime}", "price$5 and $$", "${scheduleName}-out",
             "x ${foo} y", "${scheduledTime:%Q}", "${scheduledTime", "$${ok} $$${bad", "${scheduledTime-1y}",
             "${scheduleName:%Y}", "$${a${bogus}}", "a" * 16000 + "${x}", "plain"]


@pytest.mark.parametrize("value", SCHEDULES)
def test_schedule_rule(admit, value):
    assert admit("schedule", value) == _api(python_error(parse_schedule, value), "schedule")


@pytest.mark.parametrize("value", ["30-10 * * * *", "0 0 30 2 *"])
def test_schedule_checks_only_python_makes(admit, value):
    assert python_error(parse_schedule, value) and admit("schedule", value) is None


@pytest.mark.parametrize("value", ZONES)
def test_time_zone_rule(admit, value):
    assert admit("timeZone", value) == _api(python_error(load_zone, value), "timeZone")


@pytest.mark.parametrize("value", ["Mars/Olympus", "Europe"])
def test_unknown_zones_are_refused_in_the_api_servers_words(admit, value):
    got = admit("timeZone", value)
    assert python_error(load_zone, value) == f"timeZone: unknown time zone {value}"
    assert got.startswith('CronProbe.probe.tfscore.io "p" is invalid: spec.timeZone: Invalid value: "string": ')
    words = {"Europe": "is a directory"}.get(value, f"unknown time zone {value}")
    assert f"{words} evaluating rule: " in got


@pytest.mark.parametrize("value", TEMPLATES, ids=lambda v: v[:40])
def test_template_rule(admit, value):
    assert admit("template", value) == _api(python_error(check_template, value), "template")


def _api(message: str | None, field: str) -> str | None:
    return None if message is None else f'CronProbe.probe.tfscore.io "p" is invalid: spec.{field}: Invalid value: ' \
                                         f'"string": {message}'
