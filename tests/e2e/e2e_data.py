"""The data volume of examples/e2e-job.yaml: a SavedModel and a Parquet input, made on the spot (nothing downloaded).

    python tests/e2e/e2e_data.py DIR [--rows N]

DIR/model/1/   tfscore.testing.mlp: features float32[None, 16] -> probability float32[None, 1] (hidden layers 512, 512)
DIR/input/     N rows (default 300,000: id int64, f00 … f15 float32) in 4 files of 5,000-row row groups, so one Spark task
               per row group with spark.tfscore.splitRows=5000: 60 tasks, about 15-30 s of scoring on two 1-core executors,
               long enough to break a run on purpose halfway
DIR/out/       empty; the jobs write here
Everything is owned by uid/gid 1000 (the runtime image's user) when run as root. A stamp file records what was made, so an
unchanged volume is reused as is (the e2e suite's warm runs). Runs in its own process: TensorFlow stays out of pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

FEATURES = 16
HIDDEN = (512, 512)
ROW_GROUP = 5000
FILES = 4
SEED = 20261124
ROWS = 300_000
UID = 1000
STAMP = ".e2e-data.json"


def recipe(rows: int) -> dict:
    return {"rows": rows, "features": FEATURES, "hidden": list(HIDDEN), "rowGroup": ROW_GROUP, "files": FILES, "seed": SEED,
            "format": 1}


def make(root: Path, rows: int) -> bool:
    """Create the volume under `root` unless the stamp says it is already there; True when (re)made."""
    stamp = root / STAMP
    if stamp.exists() and json.loads(stamp.read_text()) == recipe(rows):
        return False
    from tfscore import testing

    for sub in ("model", "input"):
        shutil.rmtree(root / sub, ignore_errors=True)
    testing.mlp(root / "model", features=FEATURES, hidden=HIDDEN, version=1, seed=SEED)
    testing.write_parquet(root / "input", testing.tabular_columns(rows, FEATURES, seed=SEED), row_group=ROW_GROUP,
                          files=FILES)
    (root / "out").mkdir(exist_ok=True)
    stamp.write_text(json.dumps(recipe(rows)))
    return True


def chown_tree(root: Path, uid: int = UID) -> None:
    if os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)):
            os.lchown(name, uid, uid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    made = make(args.dir, args.rows)
    chown_tree(args.dir)
    print(json.dumps({"dir": str(args.dir), "made": made, **recipe(args.rows)}))


if __name__ == "__main__":
    main()
