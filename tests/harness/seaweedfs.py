"""A real S3 server for tests: SeaweedFS (`weed server -s3`) started and stopped through hack/s3/up.sh and down.sh.

The scripts are the one source of truth for the command line; this class only passes the state dir, address and port,
and reads the KEY=value lines up.sh prints (S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_PID, ...).

    s3 = SeaweedFS(cache_dir, tmp_path / "s3")          # host 127.0.0.1, a free port
    s3.start()                                          # Unavailable when weed is not built (start(build=True) builds)
    s3.make_bucket("data")
    env = {**os.environ, **s3.env()}                    # AWS_* + AWS_ENDPOINT_URL for boto3/s3fs/the CLI
    s3.stop()

Pods on the local cluster (hack/cluster, bridge tfscore0) reach the host on its node IP: `SeaweedFS.node_ip()`
(= `hack/s3/env.sh --node-ip`, TFSCORE_NODE_IP or the default route's source address) as `host`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from harness.common import ROOT, Unavailable

S3_HACK = ROOT / "hack" / "s3"
UNBUILT = 3   # up.sh's exit code when weed is not built and --build was not given




class SeaweedFS:
    def __init__(self, cache_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str],
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.cache_dir = Path(cache_dir)
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self._info: dict[str, str] = {}

    # ---- lifecycle ---------------------------------------------------------------------------------------------------
    def _run(self, script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "TFSCORE_CACHE": str(self.cache_dir)}
        return subprocess.run(["bash", str(S3_HACK / script), *args], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start(self, build: bool = False) -> SeaweedFS:
        """Start (or reuse, when already running from state_dir) the server; returns self once S3 answers."""
        args = ["--state", str(self.state_dir), "--host", self.host, "--port", str(self.port)]
        if build:
            args.append("--build")
        try:
            # a cold build takes minutes on two cores; a start takes seconds
            proc = self._run("up.sh", *args, timeout=3600 if build else 180)
        except subprocess.TimeoutExpired as e:
            raise Unavailable(f"hack/s3/up.sh did not finish in {e.timeout:.0f} s (state {self.state_dir})") from None
        if proc.returncode == UNBUILT:
            raise Unavailable(_last_line(proc.stderr) or "weed is not built: run hack/s3/build.sh")
        if proc.returncode != 0:
            raise Unavailable(f"hack/s3/up.sh failed (exit {proc.returncode}): {_tail(proc.stderr)}")
        self._info = parse_env(proc.stdout)
        missing = {"S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_PID"} - self._info.keys()
        if missing:
            raise Unavailable(f"hack/s3/up.sh printed no {', '.join(sorted(missing))}: {proc.stdout!r}")
        self.port = int(self._info["S3_PORT"])
        return self

    def stop(self, purge: bool = False) -> None:
        """Stop the server; down.sh fails (and so does this) if a process or port of it is left."""
        args = ["--state", str(self.state_dir)] + (["--purge"] if purge else [])
        proc = self._run("down.sh", *args, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"hack/s3/down.sh failed (exit {proc.returncode}): {_tail(proc.stderr)}")
        self._info = {}

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what a client needs -----------------------------------------------------------------------------------------
    def _get(self, key: str) -> str:
        if not self._info:
            raise RuntimeError("SeaweedFS is not started")
        return self._info[key]

    @property
    def endpoint(self) -> str:
        return self._get("S3_ENDPOINT")

    @property
    def access_key(self) -> str:
        return self._get("AWS_ACCESS_KEY_ID")

    @property
    def secret_key(self) -> str:
        return self._get("AWS_SECRET_ACCESS_KEY")

    @property
    def pid(self) -> int:
        return int(self._get("S3_PID"))

    @property
    def log(self) -> Path:
        return Path(self._get("S3_LOG"))

    def env(self) -> dict[str, str]:
        """Environment for an S3 client (boto3/botocore, s3fs, the AWS CLI) pointed at this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": self._get("AWS_DEFAULT_REGION"), "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ENDPOINT_URL_S3": self.endpoint}

    def client(self):  # noqa: ANN201 - botocore's client class is generated at run time
        """A botocore S3 client with path-style addressing (as Hadoop s3a uses it)."""
        import botocore.session
        from botocore.config import Config

        return botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint, region_name=self._get("AWS_DEFAULT_REGION"),
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def make_bucket(self, name: str) -> str:
        """Create the bucket (an existing one of ours is fine); returns its name."""
        s3 = self.client()
        try:
            s3.create_bucket(Bucket=name)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        return name

    @staticmethod
    def node_ip() -> str:
        """The host address pods on the local cluster harness reach (hack/cluster's TFSCORE_NODE_IP logic)."""
        proc = subprocess.run(["bash", str(S3_HACK / "env.sh"), "--node-ip"], capture_output=True, text=True,
                              check=True, timeout=30)
        return proc.stdout.strip()


def parse_env(text: str) -> dict[str, str]:
    """KEY=value lines (split at the first '='); other lines are ignored."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            out[key] = value
    return out


_LOG_PREFIX = re.compile(r"^\[s3 [0-9:]+\] (ERROR: )?")


def _tail(text: str, lines: int = 15) -> str:
    """The scripts' last log lines, without their '[s3 HH:MM:SS]' prefix."""
    return "\n".join(_LOG_PREFIX.sub("", line) for line in text.strip().splitlines()[-lines:])


def _last_line(text: str) -> str:
    return _tail(text, 1)
