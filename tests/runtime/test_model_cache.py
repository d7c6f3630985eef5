"""Models from a remote URI: resolved once by the driver, downloaded once per host, safe under concurrent workers."""

from __future__ import annotations

import functools
import http.server
import multiprocessing
import threading
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.runtime import FEATURES, job_doc
from tfscore import testing
from tfscore.runtime.model import materialize, resolve_version


@pytest.fixture
def model_server(models):
    """A real HTTP server over the models directory, counting the GETs of each file."""
    gets: Counter = Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            gets[self.path] += 1
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=str(models["root"])))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", gets
    server.shutdown()


def _materialize(args):
    import os

    uri, cache = args
    os.environ["TFSCORE_CACHE"] = cache
    return materialize(uri)


def test_concurrent_workers_download_once(model_server, tmp_path):
    base, gets = model_server
    _, version_uri = resolve_version(f"{base}/mlp", "latest")
    assert version_uri.endswith("/mlp/2")
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        paths = pool.map(_materialize, [(version_uri, str(tmp_path / "cache"))] * 6)
    assert len(set(paths)) == 1
    # (saved_model.pb is also probed by resolve_version; the variables are fetched only by a download)
    assert gets["/mlp/2/variables/variables.index"] == 1, gets
    cached = list((tmp_path / "cache" / "models").iterdir())
    assert sorted(p.name.endswith(".lock") for p in cached) == [False, True], cached  # one copy, no temp leftovers


def test_job_with_http_model(run, model_server, tmp_path, monkeypatch, models):
    base, _ = model_server
    monkeypatch.setenv("TFSCORE_CACHE", str(tmp_path / "cache"))  # the driver's copy; workers use their own env
    cols = testing.tabular_columns(2000, 8, seed=21)
    inp = testing.write_parquet(tmp_path / "in", cols, row_group=500)
    result = run(job_doc(f"{base}/mlp", inp, tmp_path / "out", model={"version": 1},
                         input={"columns": {"features": FEATURES}}, output={"passthrough": ["id"]}))
    assert result.model.uri == f"{base}/mlp" and result.model.version == "1"
    out = pq.read_table(str(tmp_path / "out")).sort_by("id")
    expected = testing.call_signature(str(models["mlp"] / "1"),
                                      {"features": np.stack([cols[c] for c in FEATURES], 1)})["probability"][:, 0]
    np.testing.assert_allclose(out["probability"].to_numpy(), expected, rtol=1e-5, atol=1e-6)
