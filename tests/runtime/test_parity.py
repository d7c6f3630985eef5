"""Reader/writer parity: the Arrow and the Spark paths accept the same input and yield the same columns, types and values.

One Hive-partitioned Parquet dataset written by pyarrow holds a column of every Arrow type Parquet can hold (integers,
floats, bool, string, large_string, dictionary, binary, decimal, date, timestamps s/ms/us/ns with and without a time
zone, list, fixed_size_list, struct, map), names Parquet allows and Spark's SQL parser does not like (dots, spaces,
unicode, backticks), and a null in every column. It is scored for every reader × writer × format by the runtime's own
entry point on the tier's Spark session (the same path `tfscore run` takes, without paying Spark's and TensorFlow's
start-up per cell); the outputs of the two readers must be identical per writer and format, and the Parquet outputs of
both writers must equal the input (in the types Spark holds). Types a format or Spark cannot hold fail, in fresh
`tfscore run` processes as a user meets them, with exit code 2 and one sentence naming the column, and no traceback.
`pytest -s` prints the matrix counts."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import numpy as np
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
import yaml

from harness.runtime import FEATURES, job_doc, tfscore
from tfscore import testing
from tfscore.runtime import arrow_types

ROWS = 24
T0 = dt.datetime(2026, 11, 1, 12, 30, 15, 123456)


def _typed_columns(n: int) -> dict[str, pa.Array]:
    """One column per type (and awkward name); row 1 is null everywhere."""
    idx = list(range(n))

    def col(values, type_):
        values = list(values)
        values[1] = None
        return pa.array(values, type=type_)

    return {
        "i8": col((i % 100 - 50 for i in idx), pa.int8()),
        "i16": col((i * 300 for i in idx), pa.int16()),
        "i32": col((i * 70_000 for i in idx), pa.int32()),
        "i64": col((i * 2**40 for i in idx), pa.int64()),
        "f32": col((float("nan") if i == 2 else i / 3 for i in idx), pa.float32()),
        "f64": col((i / 7 for i in idx), pa.float64()),
        "flag": col((i % 2 == 0 for i in idx), pa.bool_()),
        "f.1": col((f"dotted-{i}" for i in idx), pa.string()),
        "a b": col((f"spaced {i}" for i in idx), pa.large_string()),
        "ünï": col((["x", "y", "z"][i % 3] for i in idx), pa.string()).dictionary_encode(),
        "back`tick": col((bytes([i, 255 - i]) for i in idx), pa.binary()),
        "dec": col((decimal.Decimal(f"{i}.125") for i in idx), pa.decimal128(12, 3)),
        "day": col((dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in idx), pa.date32()),
        "ts_s": col((T0 + dt.timedelta(hours=i) for i in idx), pa.timestamp("s")),
        "ts_ms": col((T0 + dt.timedelta(minutes=i) for i in idx), pa.timestamp("ms")),
        "ts_us": col((T0 + dt.timedelta(seconds=i) for i in idx), pa.timestamp("us")),
        "ts_ns": pa.array([None if i == 1 else 1_794_000_000_123_456_789 + i * 1001 for i in idx],
                          pa.int64()).cast(pa.timestamp("ns")),
        "tz_ms": col((T0.replace(tzinfo=dt.UTC) + dt.timedelta(minutes=i) for i in idx), pa.timestamp("ms", "UTC")),
        "tz_ns": pa.array([None if i == 1 else 1_794_000_000_987_654_321 - i * 7 for i in idx],
                          pa.int64()).cast(pa.timestamp("ns", "Europe/Berlin")),
        "ints": col(([i, i + 1, None] for i in idx), pa.list_(pa.int32())),
        "vec": col(([i, i / 2, -i] for i in idx), pa.list_(pa.float32(), 3)),
        "st": col(({"a": i, "b": f"s{i}"} for i in idx), pa.struct([("a", pa.int32()), ("b", pa.string())])),
        "kv": col(([("k", i), ("j", -i)] for i in idx), pa.map_(pa.string(), pa.int64())),
    }


SCALARS = ["i8", "i16", "i32", "i64", "f32", "f64", "flag", "f.1", "a b", "ünï", "dec", "day", "ts_s", "ts_ms", "ts_us",
           "ts_ns", "tz_ms", "tz_ns"]
TYPED = list(_typed_columns(3))
COUNTS = {"cells": 0, "runs": 0, "processes": 0, "refusals": 0}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("parity") / "in"
    feats = testing.tabular_columns(ROWS, 8, seed=5)
    typed = _typed_columns(ROWS)
    for region, rows in (("eu", slice(0, ROWS // 2)), ("us", slice(ROWS // 2, ROWS))):
        part = {"id": pa.array(feats["id"][rows]), **{c: pa.array(feats[c][rows]) for c in FEATURES},
                **{k: v[rows] for k, v in typed.items()}}
        (root / f"region={region}").mkdir(parents=True)
        pq.write_table(pa.table(part), root / f"region={region}" / "part-0.parquet")
    return {"root": root, "typed": typed}


def run_cli(tmp_path, doc) -> tuple[int, str]:
    manifest = tmp_path / f"job-{COUNTS['processes']}.yaml"
    manifest.write_text(yaml.safe_dump(doc, allow_unicode=True))
    COUNTS["processes"] += 1
    proc = tfscore("run", manifest, "--master", "local[2]")
    assert "Traceback" not in proc.stderr and "\tat org." not in proc.stderr and "Exception in thread" not in proc.stderr, \
        proc.stderr[-3000:]
    return proc.returncode, proc.stderr


def comparable(table: pa.Table) -> pa.Table:
    """NaN made equal to itself (Table.equals compares NaN as unequal), so identical outputs compare equal."""
    import pyarrow.compute as pc

    columns = []
    for c in table.columns:
        if pa.types.is_floating(c.type):
            c = pc.if_else(pc.is_nan(c), pa.scalar(-1.25e-300, c.type), c)
        columns.append(c)
    return pa.table(columns, names=table.column_names)


def read(out, fmt: str) -> pa.Table:
    files = sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith(("_", ".")))
    if fmt == "parquet":
        return pa.concat_tables(pq.read_table(f) for f in files)
    if fmt == "orc":
        return pa.concat_tables(orc.ORCFile(str(f)).read() for f in files)
    lines = sorted(line for f in files for line in f.read_text().splitlines() if line.strip())
    return pa.table({"line": lines})  # json/csv: the text itself must be identical


def score(run, models, dataset, tmp_path, reader: str, writer: str, fmt: str, passthrough: list[str]):
    out = tmp_path / f"out-{reader}-{writer}-{fmt}-{COUNTS['runs']}"
    doc = job_doc(models["mlp"], dataset["root"], out, input={"columns": {"features": FEATURES}, "reader": reader},
                  output={"format": fmt, "writer": writer, "passthrough": ["id", "region", *passthrough],
                          "predictions": {"probability": "p"}})
    COUNTS["runs"] += 1
    assert run(doc).rows_out == ROWS
    table = read(out, fmt)
    return table.sort_by("id") if "id" in table.column_names else table


WRITERS = [("arrow", "parquet"), ("spark", "parquet"), ("spark", "orc"), ("spark", "json")]


def test_both_readers_and_both_writers_agree_on_every_type(run, models, dataset, tmp_path):
    outputs = {}
    for reader in ("arrow", "spark"):
        for writer, fmt in WRITERS:
            outputs[reader, writer, fmt] = score(run, models, dataset, tmp_path, reader, writer, fmt, TYPED)
    for writer, fmt in WRITERS:
        a, s = outputs["arrow", writer, fmt], outputs["spark", writer, fmt]
        assert a.schema.equals(s.schema), (writer, fmt, a.schema, s.schema)
        assert comparable(a).equals(comparable(s)), (writer, fmt)
        COUNTS["cells"] += 2 * len(TYPED)
    # The Parquet outputs hold the input's values in the types Spark holds, whichever writer wrote them.
    expected = pa.table({k: v for k, v in dataset["typed"].items()})
    held = arrow_types.held_schema(expected.schema)
    for reader in ("arrow", "spark"):
        for writer in ("arrow", "spark"):
            got = outputs[reader, writer, "parquet"].select(TYPED)
            for name in TYPED:
                want = arrow_types.cast(pa.RecordBatch.from_arrays([expected.column(name).combine_chunks()],
                                                                   names=[name]),
                                        pa.schema([held.field(name)])).column(0)
                assert got.column(name).type.equals(held.field(name).type), (reader, writer, name)
                assert comparable(pa.table([got.column(name)], names=[name])).equals(
                    comparable(pa.table([want], names=[name]))), (reader, writer, name)
    assert outputs["arrow", "arrow", "parquet"].column("region").to_pylist() == ["eu"] * (ROWS // 2) + ["us"] * (ROWS // 2)


def test_csv_holds_the_scalars_alike_and_refuses_a_struct_naming_it(run, models, dataset, tmp_path):
    a = score(run, models, dataset, tmp_path, "arrow", "spark", "csv", SCALARS)
    s = score(run, models, dataset, tmp_path, "spark", "spark", "csv", SCALARS)
    assert comparable(a).equals(comparable(s)) and a.num_rows == ROWS
    COUNTS["cells"] += 2 * len(SCALARS)
    for reader in ("arrow", "spark"):
        doc = job_doc(models["mlp"], dataset["root"], tmp_path / f"csv-st-{reader}",
                      input={"columns": {"features": FEATURES}, "reader": reader},
                      output={"format": "csv", "passthrough": ["id", "st"]})
        code, stderr = run_cli(tmp_path, doc)
        assert code == 2 and "column 'st'" in stderr.strip().splitlines()[-1] and "csv" in stderr.lower(), stderr[-2000:]
        assert not (tmp_path / f"csv-st-{reader}").exists()
        COUNTS["refusals"] += 1


def test_a_column_spark_cannot_read_is_refused_alike_and_an_unused_one_is_ignored(run, models, tmp_path):
    root = tmp_path / "halves"
    root.mkdir()
    feats = testing.tabular_columns(10, 8, seed=1)
    pq.write_table(pa.table({**{k: pa.array(v) for k, v in feats.items()},
                             "half": pa.array(np.arange(10, dtype=np.float16))}), root / "part-0.parquet")
    for reader in ("arrow", "spark"):
        doc = job_doc(models["mlp"], root, tmp_path / f"half-{reader}",
                      input={"columns": {"features": FEATURES}, "reader": reader},
                      output={"passthrough": ["id", "half"]})
        code, stderr = run_cli(tmp_path, doc)
        last = stderr.strip().splitlines()[-1]
        assert code == 2 and "column 'half'" in last and "FLOAT16" in last, stderr[-2000:]
        COUNTS["refusals"] += 1
        doc["spec"]["output"] = {"uri": str(tmp_path / f"half-unused-{reader}"), "passthrough": ["id"]}
        COUNTS["runs"] += 1
        assert run(doc).rows_out == 10


def test_the_local_engine_writes_what_spark_writes_on_every_type(run, models, tmp_path):
    """The local engine (no JVM) and Spark run the same tasks on plain Parquet: the same files' columns, types and
    values, over several splits in two files, and the manifest names the engine that ran."""
    from tfscore.api.manifest import parse
    from tfscore.runtime.job import RunOptions, run_job

    root = tmp_path / "flat"
    root.mkdir()
    feats = testing.tabular_columns(ROWS * 2, 8, seed=9)
    typed = {k: pa.concat_arrays([v, v]) for k, v in _typed_columns(ROWS).items()}
    for i, rows in enumerate((slice(0, ROWS), slice(ROWS, 2 * ROWS))):
        pq.write_table(pa.table({"id": pa.array(feats["id"][rows]), **{c: pa.array(feats[c][rows]) for c in FEATURES},
                                 **{k: v[rows] for k, v in typed.items()}}), root / f"part-{i}.parquet", row_group_size=8)
    outputs = {}
    for engine in ("spark", "local"):
        out = tmp_path / f"out-{engine}"
        doc = job_doc(models["mlp"], root, out, input={"columns": {"features": FEATURES}},
                      output={"passthrough": ["id", *TYPED], "predictions": {"probability": "p"}},
                      sparkConf={"spark.tfscore.splitRows": "8"})
        result = run(doc) if engine == "spark" else run_job(parse(doc, "test"), RunOptions(master="local[2]",
                                                                                             engine="local"))
        COUNTS["runs"] += 1
        assert result.rows_out == 2 * ROWS
        assert json.loads((out / "_tfscore.json").read_text())["engine"] == engine
        assert len(list(out.glob("part-*.parquet"))) == 6  # one file per split: 3 row groups of 8 rows per file
        outputs[engine] = read(out, "parquet").sort_by("id")
    assert outputs["local"].schema.equals(outputs["spark"].schema), (outputs["local"].schema, outputs["spark"].schema)
    assert comparable(outputs["local"]).equals(comparable(outputs["spark"]))
    COUNTS["cells"] += len(TYPED)


def test_print_the_matrix():
    print(f"parity matrix: {COUNTS['cells']} cells (column type × reader × writer × format) equal across readers in "
          f"{COUNTS['runs']} runs; {COUNTS['refusals']} refusals naming the column in {COUNTS['processes']} fresh "
          "`tfscore run` processes, no traceback on any stderr")
    json.dumps(COUNTS)
