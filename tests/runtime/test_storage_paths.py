"""Every path of a run on a real S3 server (SeaweedFS, hack/s3): the model, the input through both readers (Parquet by
the Arrow reader; Parquet with `where`, CSV, JSON and ORC, a catalog table by Spark's reader over s3a), the output through
both writers (Parquet by the workers; Parquet with partitionBy, CSV, JSON and ORC by Spark's writer over s3a) and the
quarantine. Predictions equal direct TensorFlow calls; the committed output carries its marker and nothing is left
beside it."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.runtime import FEATURES, job_doc
from tfscore import testing

ROWS = 3000


@pytest.fixture(scope="module")
def lake(seaweed, models, spark):
    """Bucket `lake`: the model, and the same rows as Parquet (plain and Hive-partitioned), CSV, JSON and ORC."""
    import s3fs

    seaweed.make_bucket("lake")
    fs = s3fs.S3FileSystem()
    fs.put(str(models["mlp"]) + "/", "lake/models/risk/", recursive=True)
    cols = testing.tabular_columns(ROWS, 8, seed=3)
    cols["country"] = np.array(["DE", "FR", "NL"])[np.arange(ROWS) % 3]
    table = pa.table(cols)
    with fs.open("lake/in/parquet/part-0.parquet", "wb") as fh:
        pq.write_table(table, fh, row_group_size=500)
    df = spark.createDataFrame(table.to_pandas())
    df.write.mode("overwrite").partitionBy("country").parquet("s3a://lake/in/partitioned")
    df.write.mode("overwrite").option("header", "true").csv("s3a://lake/in/csv")
    df.write.mode("overwrite").json("s3a://lake/in/json")
    df.write.mode("overwrite").orc("s3a://lake/in/orc")
    spark.sql("DROP TABLE IF EXISTS lake_features")
    spark.sql("CREATE TABLE lake_features USING parquet LOCATION 's3a://lake/in/parquet'")
    fs.invalidate_cache()
    return {"fs": fs, "cols": cols}


def expected(lake, models, ids) -> np.ndarray:
    feats = np.stack([lake["cols"][c] for c in FEATURES], 1)[ids]
    return testing.call_signature(str(models["mlp"] / "2"), {"features": feats})["probability"][:, 0]


def read_output(fs, uri: str, fmt: str) -> pa.Table:
    files = [f for f in fs.find(uri.removeprefix("s3://")) if not f.rsplit("/", 1)[1].startswith(("_", "."))]
    parts = []
    for f in files:
        data = fs.cat_file(f)
        if fmt == "parquet":
            parts.append(pq.read_table(io.BytesIO(data)).select(["id", "p"]))
        elif fmt == "orc":
            import pyarrow.orc as orc

            parts.append(orc.ORCFile(io.BytesIO(data)).read().select(["id", "p"]))
        elif fmt == "json":
            rows = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
            parts.append(pa.table({"id": [r["id"] for r in rows], "p": [r["p"] for r in rows]}))
        else:
            import pyarrow.csv as pcsv

            t = pcsv.read_csv(io.BytesIO(data), read_options=pcsv.ReadOptions(column_names=["id", "country", "p"]))
            parts.append(t.select(["id", "p"]))
    return pa.concat_tables([t.cast(pa.schema([("id", pa.int64()), ("p", pa.float64())])) for t in parts])


CASES = [  # (input, format, where/table, output format, partitionBy, the reader and writer the run must pick)
    pytest.param("s3://lake/in/parquet", "parquet", None, "parquet", [], "arrow", "arrow", id="parquet-arrow-arrow"),
    pytest.param("s3://lake/in/parquet", "parquet", "country = 'DE'", "parquet", ["country"], "spark", "spark",
                 id="parquet-where-partitionBy"),
    pytest.param("s3://lake/in/partitioned", "parquet", None, "json", [], "arrow", "spark", id="hive-dirs-to-json"),
    pytest.param("s3://lake/in/csv", "csv", None, "orc", [], "spark", "spark", id="csv-to-orc"),
    pytest.param("s3://lake/in/json", "json", None, "csv", [], "spark", "spark", id="json-to-csv"),
    pytest.param("s3://lake/in/orc", "orc", None, "parquet", [], "spark", "arrow", id="orc-to-parquet"),
    pytest.param("table:lake_features", "table", "country <> 'FR'", "parquet", [], "spark", "arrow", id="table"),
]


@pytest.mark.parametrize("uri,fmt,where,out_fmt,partition_by,reader,writer", CASES)
def test_every_path_on_s3(run, lake, models, uri, fmt, where, out_fmt, partition_by, reader, writer, request):
    out = f"s3://lake/out/{request.node.callspec.id}"
    inp = {"table": uri.split(":", 1)[1]} if uri.startswith("table:") else {"uri": uri, "format": fmt}
    if fmt == "csv":
        inp["options"] = {"header": "true", "inferSchema": "true"}
    if where:
        inp["where"] = where
    doc = job_doc("s3://lake/models/risk", None, out, input={**inp, "columns": {"features": FEATURES}},
                  output={"format": out_fmt, "passthrough": ["id", "country"], "predictions": {"probability": "p"},
                          "partitionBy": partition_by, **({"options": {"header": "false"}} if out_fmt == "csv" else {})})
    if "table" in inp:
        doc["spec"]["input"].pop("uri")
    result = run(doc)
    fs = lake["fs"]
    fs.invalidate_cache()
    keep = np.ones(ROWS, dtype=bool)
    if where:
        country = lake["cols"]["country"]
        keep = country == "DE" if "= 'DE'" in where else country != "FR"
    assert result.rows_in == result.rows_out == int(keep.sum())
    got = read_output(fs, out, out_fmt).sort_by("id")
    ids = got["id"].to_numpy()
    np.testing.assert_array_equal(ids, np.flatnonzero(keep))
    np.testing.assert_allclose(got["p"].to_numpy(), expected(lake, models, ids), rtol=1e-5, atol=1e-6)
    manifest = json.loads(fs.cat_file(out.removeprefix("s3://") + "/_tfscore.json"))
    assert (manifest["reader"], manifest["writer"]) == (reader, writer)
    # A recursive listing: SeaweedFS lists an emptied prefix for a while (hack/s3/README.md).
    assert not [f for f in fs.find("lake/out") if f.split("/")[2].startswith(".")], \
        "no staging, journal or lease left beside the outputs"


def test_quarantine_on_s3(run, lake, models, seaweed):
    import s3fs

    fs = s3fs.S3FileSystem()
    cols = testing.tabular_columns(1000, 8, seed=9)
    table = pa.table(cols)
    f00 = table.column("f00").to_pylist()
    for i in (3, 500):
        f00[i] = None
    table = table.set_column(table.schema.get_field_index("f00"), "f00", pa.array(f00, type=pa.float32()))
    with fs.open("lake/in/nulls/part-0.parquet", "wb") as fh:
        pq.write_table(table, fh)
    doc = job_doc("s3://lake/models/risk", "s3://lake/in/nulls", "s3://lake/out/q-scores",
                  input={"columns": {"features": FEATURES}}, output={"passthrough": ["id"]},
                  onInvalidRow="quarantine", quarantineUri="s3://lake/out/q-rows")
    result = run(doc)
    fs.invalidate_cache()
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (1000, 998, 2)
    quarantined = pa.concat_tables(pq.read_table(io.BytesIO(fs.cat_file(f)))
                                   for f in fs.find("lake/out/q-rows") if f.endswith(".parquet"))
    assert sorted(quarantined["id"].to_pylist()) == [3, 500]
