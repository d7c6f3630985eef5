"""Wiring for main.py: the ScoringSchedule controller on the operator's API client, registry and event poster."""

from __future__ import annotations

from kubernetes import client
from prometheus_client import CollectorRegistry

from tfscore.operator.config import OperatorConfig
from tfscore.operator.scoringschedule.clock import ScheduleClock, ServerClock
from tfscore.operator.scoringschedule.controller import ScheduleController
from tfscore.operator.scoringschedule.kube import ScheduleKube
from tfscore.operator.scoringschedule.metrics import ScheduleMetrics
from tfscore.operator.scoringschedule.reconcile import Context, PostEvent


def controller(api: client.ApiClient, config: OperatorConfig, registry: CollectorRegistry,
               post_event: PostEvent) -> ScheduleController:
    server = ServerClock()
    clock = ScheduleClock(server, scale=config.schedule_time_scale, anchor=config.anchor())
    ctx = Context(kube=ScheduleKube(api, server), clock=clock, metrics=ScheduleMetrics(registry),
                  post_event=post_event)
    return ScheduleController(ctx, workers=config.schedule_workers)
