"""tfscore.runtime.prewarm: when a warm process refuses, and the daemon's side of the hand-off when no warm process
takes a connection (the served hand-off itself runs with real Spark in tests/runtime/test_prewarm.py)."""

from __future__ import annotations

import os
import socket
import sys
import threading

from tfscore.runtime import prewarm


def _offer(**over):
    return {**prewarm._offer(), **over}


def test_an_offer_of_this_very_interpreter_is_served():
    assert prewarm._refusal(_offer(), prewarm._offer()["env"].get("PYTHONHASHSEED")) is None


def test_another_python_another_hash_seed_or_another_package_file_is_refused():
    seed = prewarm._offer()["env"].get("PYTHONHASHSEED")
    assert prewarm._refusal(_offer(executable="/usr/bin/python3.9"), seed) == "another Python (/usr/bin/python3.9)"
    assert prewarm._refusal(_offer(env={"PYTHONHASHSEED": "7"}), "0") == "another PYTHONHASHSEED"
    moved = {**prewarm._package_files(), "pyspark": "/elsewhere/pyspark.zip/pyspark/__init__.py"}
    refusal = prewarm._refusal(_offer(packages=moved), seed)
    assert refusal is not None and refusal.startswith("pyspark from /elsewhere/pyspark.zip")


def test_package_files_are_found_without_importing_them():
    before = set(sys.modules)
    files = prewarm._package_files()
    assert files["tfscore"].endswith("tfscore/__init__.py")
    assert "tensorflow" not in set(sys.modules) - before


def test_no_pool_no_claim(monkeypatch):
    monkeypatch.delenv(prewarm.POOL_ENV, raising=False)
    a, b = socket.socketpair()
    with a, b:
        assert prewarm.claim(a, set()) is None


def test_a_stale_socket_in_the_pool_is_skipped_and_each_socket_is_offered_once(monkeypatch, tmp_path):
    monkeypatch.setenv(prewarm.POOL_ENV, str(tmp_path))
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "1.sock"))
    stale.close()  # bound, never listening: connect is refused
    tried: set[str] = set()
    a, b = socket.socketpair()
    with a, b:
        assert prewarm.claim(a, tried) is None
        assert tried == {str(tmp_path / "1.sock")}
        assert prewarm.claim(a, tried) is None  # not offered again


def test_a_refusal_reaches_the_daemon_as_none(monkeypatch, tmp_path):
    # A stand-in warm process that reads the offer as serve() does and refuses it: the daemon then forks.
    monkeypatch.setenv(prewarm.POOL_ENV, str(tmp_path))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "2.sock"))
    listener.listen(1)
    seen = {}

    def refuse():
        link, _ = listener.accept()
        with link:
            header, fds, _, _ = socket.recv_fds(link, 4, 3)
            seen["fds"] = len(fds)
            seen["offer"] = prewarm._recv_exact(link, prewarm._INT.unpack(header)[0])
            for fd in fds:
                os.close(fd)
            link.sendall(prewarm._INT.pack(0))

    t = threading.Thread(target=refuse)
    t.start()
    a, b = socket.socketpair()
    with a, b:
        assert prewarm.claim(a, set()) is None
    t.join(10)
    listener.close()
    assert seen["fds"] == 3 and b'"executable"' in seen["offer"]


def test_spark_python_path_is_pyspark_and_py4j_of_spark_home(monkeypatch, tmp_path):
    lib = tmp_path / "python" / "lib"
    lib.mkdir(parents=True)
    for name in ("pyspark.zip", "py4j-0.10.9.9-src.zip", "other.zip"):
        (lib / name).write_bytes(b"")
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))
    assert prewarm.spark_python_path() == [str(lib / "pyspark.zip"), str(lib / "py4j-0.10.9.9-src.zip")]
    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "none"))
    assert prewarm.spark_python_path() == []
