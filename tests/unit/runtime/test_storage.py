"""Storage primitives on a local filesystem (runtime/storage.py): Spark spellings, exclusive create, idempotent moves."""

from __future__ import annotations

import threading

from tfscore.runtime import storage


def test_spark_uri():
    assert storage.spark_uri("/data/x") == "file:///data/x"
    assert storage.spark_uri("s3://b/k") == "s3a://b/k"
    assert storage.spark_uri("hdfs://nn/x") == "hdfs://nn/x"
    assert storage.spark_uri("gs://b/k") == "gs://b/k"
    assert storage.spark_uri("abfss://c@a.dfs.core.windows.net/k") == "abfss://c@a.dfs.core.windows.net/k"


def test_locations_are_compared_in_one_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.location("s3a://b/x/./y/").overlaps(storage.location("s3://b/x"))
    assert storage.location("d/x/../in") == storage.location(f"file://{tmp_path}/d/in")
    assert not storage.location("s3://b/x").overlaps(storage.location("s3://b/xy"))


def test_create_exclusive_has_one_winner(tmp_path):
    fs, path = storage.filesystem(str(tmp_path / "lease.json"), "output.uri")
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(storage.create_exclusive(fs, path, b"%d" % i)))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and (tmp_path / "lease.json").read_bytes() in {b"%d" % i for i in range(8)}


def test_move_is_idempotent(tmp_path):
    fs, _ = storage.filesystem(str(tmp_path), "output.uri")
    src, dst = tmp_path / "a" / "f", tmp_path / "b" / "f"
    src.parent.mkdir()
    src.write_text("x")
    storage.move(fs, str(src), str(dst))
    storage.move(fs, str(src), str(dst))  # repeated (a journal completed twice): done already
    assert dst.read_text() == "x" and not src.exists()


def test_put_and_read_json(tmp_path):
    fs, path = storage.filesystem(str(tmp_path / "m.json"), "output.uri")
    assert storage.read_json(fs, path) is None
    storage.put(fs, path, b'{"a": 1}')
    storage.put(fs, path, b'{"a": 2}')
    assert storage.read_json(fs, path) == {"a": 2} and [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_data_files_skip_hidden_names(tmp_path):
    for rel in ("a.parquet", "dt=1/b.parquet", "_SUCCESS", ".x/c.parquet", "dt=2/_tmp/d.parquet"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    fs, root, files = storage.list_data_files(str(tmp_path))
    assert [f[len(root) + 1:] for f in files] == ["a.parquet", "dt=1/b.parquet"]
