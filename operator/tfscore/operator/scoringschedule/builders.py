"""Pure builder: a validated ScoringSchedule + one scheduled time → the run's ScoringJob manifest, owned by the schedule.

The spec is tfscore.api.schedule_run's rendering (the same one `tfscore run schedule.yaml --at …` runs locally); this
adds what only a cluster has: the namespace and the controller ownerReference (deleting the schedule deletes its runs,
and with them everything they made).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tfscore.api import common, scoringschedule
from tfscore.api.schedule_run import render_run
from tfscore.api.scoringschedule import ScoringSchedule


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"apiVersion": common.API_VERSION, "kind": scoringschedule.KIND, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def run_manifest(schedule: ScoringSchedule, body: Mapping[str, Any], scheduled: datetime, watermark: str | None,
                 reference_uri: str | None) -> dict[str, Any]:
    """The run's ScoringJob (raises schedule_run.RenderError, a ValueError, when it cannot be rendered)."""
    job = render_run(schedule, scheduled, watermark, reference_uri)
    meta = job.metadata.model_dump(exclude_none=True)
    meta["namespace"] = body["metadata"]["namespace"]
    meta["ownerReferences"] = [owner_reference(body)]
    return {"apiVersion": common.API_VERSION, "kind": job.kind, "metadata": meta,
            "spec": job.spec.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)}
