"""Incremental runs over Hive partitions that appear between runs, a failed run in between: each run scores only the
partitions after the last successful run's watermark (what a ScoringSchedule passes as `after`), so every row is scored
exactly once and none is skipped."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.runtime import FEATURES, job_doc
from tfscore import testing
from tfscore.runtime.errors import TfscoreError

ROWS = 500


def add_partition(root, hour: int, bad: bool = False) -> None:
    cols = testing.tabular_columns(ROWS, 8, seed=hour)
    cols["id"] = cols["id"] + hour * 10_000
    if bad:  # a null feature: the run fails under onInvalidRow: fail, naming it
        mask = np.zeros(ROWS, dtype=bool)
        mask[7] = True
        cols[FEATURES[0]] = pa.array(cols[FEATURES[0]], mask=mask)  # float32, one null
    testing.write_parquet(root / f"hour={hour}", cols, row_group=250)


def test_incremental_runs_score_every_row_once_across_a_failed_run(run, models, tmp_path):
    inp = tmp_path / "in"

    def scheduled(n: int, after: str | None):
        inc = {"partitionKey": "hour", **({"after": after} if after is not None else {})}
        return run(job_doc(models["mlp"], inp, tmp_path / f"out-{n}", input={"columns": {"features": FEATURES},
                                                                             "incremental": inc},
                           output={"passthrough": ["id", "hour"]}))

    add_partition(inp, 1)
    first = scheduled(1, None)
    assert first.incremental.partitions == ["1"] and first.incremental.watermark == "1" and first.rows_out == ROWS

    add_partition(inp, 2, bad=True)
    with pytest.raises(TfscoreError, match=FEATURES[0]):
        scheduled(2, first.incremental.watermark)
    assert not (tmp_path / "out-2").exists(), "a failed run commits nothing (and the watermark stays at 1)"

    add_partition(inp, 2)  # the upstream fix rewrites hour=2; hour=3 and hour=10 arrive meanwhile
    add_partition(inp, 3)
    add_partition(inp, 10)
    third = scheduled(3, first.incremental.watermark)
    assert third.incremental.partitions == ["2", "3", "10"], "integers in number order, the failed run's included"
    assert third.incremental.watermark == "10" and third.rows_out == 3 * ROWS

    idle = scheduled(4, third.incremental.watermark)
    assert idle.rows_in == 0 and idle.incremental.partitions == [] and idle.incremental.watermark == "10"

    ids = np.concatenate([pq.read_table(str(tmp_path / f"out-{n}"), columns=["id"])["id"].to_numpy() for n in (1, 3)])
    expected = np.concatenate([np.arange(ROWS) + h * 10_000 for h in (1, 2, 3, 10)])
    assert len(ids) == len(set(ids.tolist())) == 4 * ROWS and sorted(ids.tolist()) == sorted(expected.tolist())
