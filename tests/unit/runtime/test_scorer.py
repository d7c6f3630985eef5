"""The task-attempt Parquet writer's row groups (runtime/scorer.py PartWriter): buffered batches become row groups of
bounded length, so what a worker holds does not grow with its partition."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tfscore.runtime.scorer import PartWriter


def _batch(start: int, n: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"id": np.arange(start, start + n, dtype=np.int64),
                                       "score": np.linspace(0, 1, n, dtype=np.float32)})


def _write(tmp_path, writer: PartWriter, batches: int, rows: int) -> pq.ParquetFile:
    for i in range(batches):
        writer.write(_batch(i * rows, rows))
    path = writer.close()
    assert path is not None and path.startswith(str(tmp_path)) and writer.close() is None  # idempotent
    return pq.ParquetFile(path)


def test_batches_become_row_groups_of_at_most_the_row_length(tmp_path):
    class Small(PartWriter):
        ROW_GROUP_ROWS = 100

    f = _write(tmp_path, Small(str(tmp_path), "r1", 3, 0), batches=25, rows=10)
    groups = [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]
    assert groups == [100, 100, 50]  # not 25 row groups of one batch each, nor one of the whole partition
    table = f.read()
    assert table.column("id").to_pylist() == list(range(250))  # every row, in order
    assert f.schema_arrow.field("score").type == pa.float32()


def test_wide_rows_close_a_row_group_at_the_byte_bound_first(tmp_path):
    class Bytes(PartWriter):
        ROW_GROUP_BYTES = 10 * 12 * 3  # three batches of 10 rows × (int64 + float32)

    f = _write(tmp_path, Bytes(str(tmp_path), "r1", 0, 1), batches=7, rows=10)
    assert [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)] == [30, 30, 10]
