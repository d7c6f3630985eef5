"""The Arrow reader's plan (runtime/splits.py): row-group splits, schema drift, Hive partition columns, incremental."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tfscore.api.scoringjob import Incremental
from tfscore.runtime import splits
from tfscore.runtime.errors import TfscoreError


def test_plan_splits_row_groups(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"id": np.arange(10_000)}), d / "a.parquet", row_group_size=1000)
    pq.write_table(pa.table({"id": np.arange(500)}), d / "b.parquet")
    (d / "_SUCCESS").write_text("")
    (d / ".hidden").write_text("")
    plan = splits.plan_parquet(str(d), ["id"], parallelism=2, min_rows=1, split_rows=3000)
    assert plan.rows == 10_500 and plan.files == 2
    assert [s.rows for s in plan.splits] == [3000, 3000, 3000, 1000, 500]
    assert [s.first_row for s in plan.splits] == [0, 3000, 6000, 9000, 0]


def test_plan_rejects_schema_drift(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"x": np.arange(3, dtype=np.int64)}), d / "a.parquet")
    pq.write_table(pa.table({"x": ["a", "b"]}), d / "b.parquet")
    with pytest.raises(TfscoreError, match="column 'x' is int64 in .*a.parquet but string in .*b.parquet"):
        splits.plan_parquet(str(d), ["x"], 1, 1)


def _partitioned(root, days=("2026-11-01", "2026-11-02", "2026-11-03"), rows=10):
    for i, day in enumerate(days):
        (root / f"dt={day}").mkdir(parents=True)
        pq.write_table(pa.table({"id": np.arange(i * rows, (i + 1) * rows)}), root / f"dt={day}" / "part.parquet")
    return root


PARTS = pa.schema([("dt", pa.date32())])  # what Spark infers for dt=2026-11-01


def test_partition_directories_become_typed_columns(tmp_path):
    plan = splits.plan_parquet(str(_partitioned(tmp_path / "in")), ["id", "dt"], 1, 1, partition_schema=PARTS)
    assert plan.schema.names == ["id", "dt"] and plan.schema.field("dt").type == pa.date32()
    assert plan.partitions == ("dt=2026-11-01", "dt=2026-11-02", "dt=2026-11-03")
    batches = [b for s in plan.splits for b in splits.read_split(s, ["id", "dt"], 100, plan.schema)]
    table = pa.Table.from_batches(batches)
    assert table.column("dt").to_pylist()[::10] == [dt.date(2026, 11, d) for d in (1, 2, 3)]


def test_incremental_keeps_only_the_partitions_in_range(tmp_path):
    root = _partitioned(tmp_path / "in")
    plan = splits.plan_parquet(str(root), ["id"], 1, 1, partition_schema=PARTS,
                               incremental=Incremental(partition_key="dt", after="2026-11-01", until="2026-11-02"))
    assert plan.partitions == ("dt=2026-11-02",) and plan.rows == 10
    nothing = splits.plan_parquet(str(root), ["id"], 1, 1, partition_schema=PARTS,
                                  incremental=Incremental(partition_key="dt", after="2026-11-03"))
    assert nothing.rows == 0 and nothing.schema.names == ["id", "dt"], "no new partition: still the input's columns"
    with pytest.raises(TfscoreError, match="input.incremental.partitionKey: .* no partition directories named hour"):
        splits.plan_parquet(str(root), ["id"], 1, 1, partition_schema=PARTS,
                            incremental=Incremental(partition_key="hour"))
    with pytest.raises(TfscoreError, match="input.incremental.after: 'yesterday' is not a value of partition column dt"):
        splits.plan_parquet(str(root), ["id"], 1, 1, partition_schema=PARTS,
                            incremental=Incremental(partition_key="dt", after="yesterday"))


def test_partition_values_are_unescaped_and_typed():
    assert splits.typed_value("2026-11-01 10%3A00%3A00", pa.timestamp("us", "UTC")) == \
        dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    assert splits.typed_value("a%2Fb", pa.string()) == "a/b"
    assert splits.typed_value(splits.DEFAULT_PARTITION, pa.int32()) is None
    assert splits.typed_value("12", pa.int32()) == 12 and not splits.in_range(None, None, None)
