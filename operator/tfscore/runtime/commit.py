"""The commit: staged output moved into place so that a run killed at any instant leaves a state the next attempt
completes, never destroys.

Object stores have no atomic rename, so a multi-file commit cannot be one step. Instead it is a journal that is only ever
completed, never undone:

1. The run writes into staging directories beside the output and the quarantine (`.<name>.tfscore-<kind>-<run>`).
2. `commit` writes the journal `.<name>.tfscore-journal.json` beside the output with an exclusive create (S3
   `If-None-Match: *`, GCS `ifGenerationMatch=0`, local `O_EXCL`) — the linearisation point: whoever creates it owns
   the commit; it lists every file to move in (new, uniquely named) and, for overwrite, every old data file to delete,
   plus the run's result and `_tfscore.json` record.
3. The journal is executed: new files moved in (copy, then the source deleted), old files deleted, staging removed,
   `_tfscore.json` written last as the commit marker, the journal deleted. Every step is idempotent.
4. A later attempt (of this job or any other on this output) finds a journal and completes it before anything else. If
   the journal was this job's, the job is done: its recorded result is returned and nothing is scored again (append never
   duplicates). A run whose uid is already in `_tfscore.json` is done too.

So overwrite ends with the old output intact (killed before the journal) or the new one complete (journal completed),
append adds each run's files exactly once, errorIfExists leaves either nothing or the complete output with its marker.

Fencing: a lease `.<name>.tfscore-lease.json` (exclusive create, renewed by a heartbeat) names the job uid and attempt
writing the output; a later attempt of the same job takes it over, another job's live lease refuses the run, and a stale
attempt that lost it is refused at commit (and the journal's exclusive create stops any remaining race).
"""

from __future__ import annotations

import json
import os
import posixpath
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tfscore.runtime import storage
from tfscore.runtime.errors import TfscoreError

MANIFEST = "_tfscore.json"
LEASE_SECONDS = 120.0  # a lease not renewed for this long belongs to a dead run (the heartbeat renews every 30 s)
KILL_AT = "TFSCORE_COMMIT_KILL_AT"  # fault injection (tests): SIGKILL (or `SIGTERM:<step>`) at the named commit step


def _sibling(final: str, suffix: str) -> str:
    parent, name = posixpath.split(final.rstrip("/"))
    return posixpath.join(parent, f".{name}.tfscore-{suffix}")


def owner_tag(owner: str) -> str:
    return "".join(c for c in owner.lower() if c.isalnum())[:12]


def new_run_id(owner: str | None = None) -> str:
    """A fresh id for one run's staging names: `<owner>-<random>` when the run belongs to a ScoringJob (its uid), so a
    later attempt of the same job recognises what an earlier, killed attempt left behind."""
    rand = uuid.uuid4().hex[:8]
    return f"{owner_tag(owner)}-{rand}" if owner else uuid.uuid4().hex[:12]


def staging_uri(final_uri: str, run_id: str, kind: str = "out") -> str:
    """A sibling of the target (same filesystem), hidden from readers of the parent."""
    return _sibling(final_uri, f"{kind}-{run_id}")


def _kill_point(step: str) -> None:
    wanted = os.environ.get(KILL_AT, "")
    if wanted == step:
        os.kill(os.getpid(), signal.SIGKILL)
    elif wanted == f"SIGTERM:{step}":
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass(frozen=True)
class Target:
    field: str  # output.uri | quarantineUri
    final: str
    staging: str


@dataclass
class Committer:
    """The commit of one run: its targets, mode, owner (the job uid, or the run id for an ad-hoc run) and attempt."""

    output: Target
    quarantine: Target | None
    mode: str
    owner: str
    run_id: str
    attempt: int = 0
    job: str = ""
    notes: list[str] = field(default_factory=list)  # what recovery did, for the log
    _heartbeat: threading.Event | None = None

    def __post_init__(self) -> None:
        self.fs, self.final = storage.filesystem(self.output.final, self.output.field)
        self.journal_path = storage.filesystem(_sibling(self.output.final, "journal.json"), self.output.field)[1]
        self.lease_path = storage.filesystem(_sibling(self.output.final, "lease.json"), self.output.field)[1]

    @property
    def targets(self) -> list[Target]:
        return [t for t in (self.output, self.quarantine) if t is not None]

    # ------------------------------------------------------------ before any work

    def recover(self) -> dict[str, Any] | None:
        """Complete what earlier runs left; this job's recorded result when it already committed (then do nothing)."""
        journal = storage.read_json(self.fs, self.journal_path)
        if journal is not None:
            execute(self.fs, journal)
            self.notes.append(f"completed the commit of run {journal.get('runId')} ({journal.get('job') or '-'}) that "
                              f"was interrupted")
            if journal.get("owner") == self.owner:
                return journal["result"]
        done = self._committed_result()
        if done is not None:
            return done
        for target in self.targets:
            with storage.storage_errors(target.field, target.final):
                self._remove_own_staging(target)
        return None

    def _committed_result(self) -> dict[str, Any] | None:
        manifest = storage.read_json(self.fs, posixpath.join(self.final, MANIFEST)) or {}
        for record in [manifest, *manifest.get("history", [])]:
            if record.get("owner") == self.owner and record.get("result"):
                return record["result"]
        return None

    def _remove_own_staging(self, target: Target) -> None:
        fs, final = storage.filesystem(target.final, target.field)
        parent, name = posixpath.split(final.rstrip("/"))
        prefix, tag = f".{name}.tfscore-", f"-{owner_tag(self.owner)}-"
        if not fs.exists(parent):
            return
        for entry in sorted(fs.ls(parent, detail=False)):
            base = posixpath.basename(entry.rstrip("/"))
            if base.startswith(prefix) and tag in base[len(prefix):] and not base.endswith((".json", ".tmp")):
                storage.remove(fs, entry)
                self.notes.append(f"removed {base} left by an earlier attempt")

    def check_target(self) -> None:
        """The mode's rules against what is at the output now (before work, and again at commit)."""
        fs, final = self.fs, self.final
        if self.mode == "errorIfExists":
            for target in self.targets:
                tfs, tpath = storage.filesystem(target.final, target.field)
                with storage.storage_errors(target.field, target.final):
                    nonempty = storage.exists_nonempty(tfs, tpath)
                if nonempty:
                    raise TfscoreError(f"{target.field}: {target.final} already exists (mode errorIfExists); choose a "
                                       "new uri, or set output.mode to overwrite or append")
        elif self.mode == "overwrite" and storage.exists_nonempty(fs, final) \
                and not fs.exists(posixpath.join(final, MANIFEST)):
            raise TfscoreError(f"output.uri: {self.output.final} holds data tfscore did not write (no {MANIFEST}); "
                               "overwrite only replaces a tfscore output: delete it yourself or choose another uri")

    # ------------------------------------------------------------ the lease

    def acquire(self) -> None:
        """Take the output's lease (exclusive create); take over this job's earlier attempt's or a dead run's."""
        mine = self._lease_doc()
        if storage.create_exclusive(self.fs, self.lease_path, json.dumps(mine).encode()):
            return self._start_heartbeat()
        held = storage.read_json(self.fs, self.lease_path) or {}
        age = time.time() - float(held.get("renewedAt") or 0)
        if held.get("owner") != self.owner and age < LEASE_SECONDS:
            who = held.get("job") or held.get("owner") or "another run"
            raise TfscoreError(f"output.uri: {self.output.final} is being written by {who} (attempt "
                               f"{held.get('attempt', '?')}, lease renewed {age:.0f}s ago); two jobs never write one "
                               "output at once: wait for it or choose another uri")
        storage.put(self.fs, self.lease_path, json.dumps(mine).encode())
        self._start_heartbeat()

    def _lease_doc(self) -> dict[str, Any]:
        return {"owner": self.owner, "runId": self.run_id, "attempt": self.attempt, "job": self.job,
                "renewedAt": time.time()}

    def _start_heartbeat(self) -> None:
        stop = self._heartbeat = threading.Event()

        def beat() -> None:
            while not stop.wait(LEASE_SECONDS / 4):
                try:
                    if (storage.read_json(self.fs, self.lease_path) or {}).get("runId") != self.run_id:
                        return  # taken over: the commit will refuse
                    storage.put(self.fs, self.lease_path, json.dumps(self._lease_doc()).encode())
                except Exception:  # noqa: BLE001 - a missed renewal is retried; the commit checks the lease
                    pass

        threading.Thread(target=beat, name="tfscore-lease", daemon=True).start()

    def release(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.set()
        try:
            if (storage.read_json(self.fs, self.lease_path) or {}).get("runId") == self.run_id:
                storage.remove(self.fs, self.lease_path)
        except Exception:  # noqa: BLE001 - an expired lease is harmless
            pass

    def _check_lease(self) -> None:
        held = storage.read_json(self.fs, self.lease_path) or {}
        if held.get("runId") != self.run_id:
            raise TfscoreError(f"output.uri: attempt {held.get('attempt', '?')} of {held.get('job') or 'another run'} "
                               f"took over {self.output.final} while this attempt ran; this (stale) attempt commits "
                               "nothing")

    # ------------------------------------------------------------ the commit

    def commit(self, new_files: dict[str, list[str]], result: dict[str, Any], record: dict[str, Any]) -> None:
        """Journal, then execute: `new_files` maps a target's field to the files (in its staging) to move in."""
        self._check_lease()
        self.check_target()
        moves, deletes = [], []
        for target in self.targets:
            fs, final = storage.filesystem(target.final, target.field)
            _, staging = storage.filesystem(target.staging, target.field)
            for f in new_files.get(target.field, []):
                _, src = storage.filesystem(f, target.field)
                rel = posixpath.relpath(src, staging)
                rel = posixpath.basename(rel) if rel.startswith("_attempts/") else rel
                dst = posixpath.join(final, rel)
                if self.mode == "append" and fs.exists(dst):
                    raise TfscoreError(f"{target.field}: {dst} already exists; append never overwrites a file")
                moves.append([src, dst])
            if self.mode == "overwrite" and fs.exists(final):
                deletes += [f for f in storage.data_files(fs, final) if f not in {m[1] for m in moves}]
        manifest = self._manifest_doc(record)
        journal = {"owner": self.owner, "runId": self.run_id, "attempt": self.attempt, "job": self.job,
                   "mode": self.mode, "moves": moves, "deletes": deletes,
                   "stagings": [storage.filesystem(t.staging, t.field)[1] for t in self.targets],
                   "manifest": [posixpath.join(self.final, MANIFEST), manifest], "result": result}
        _kill_point("before-journal")
        if not storage.create_exclusive(self.fs, self.journal_path, json.dumps(journal).encode()):
            raise TfscoreError(f"output.uri: another commit to {self.output.final} is under way; this run commits "
                               "nothing")
        with _deferred_sigterm():
            _kill_point("after-journal")
            execute(self.fs, journal)
        self.release()

    def _manifest_doc(self, record: dict[str, Any]) -> dict[str, Any]:
        """`_tfscore.json`: this run's record, plus the earlier runs' records when appending."""
        doc = {**record, "owner": self.owner}
        if self.mode == "append":
            old = storage.read_json(self.fs, posixpath.join(self.final, MANIFEST))
            if old:
                doc["history"] = old.get("history", []) + [{k: v for k, v in old.items() if k != "history"}]
        return doc

    def discard(self) -> None:
        """Remove this run's staging (a failed run leaves nothing behind) and give the lease back."""
        for target in self.targets:
            try:
                fs, path = storage.filesystem(target.staging, target.field)
                storage.remove(fs, path)
            except Exception:  # noqa: BLE001 - best effort cleanup must not mask the run's own error
                pass
        self.release()


def execute(fs, journal: dict[str, Any]) -> None:
    """Complete a journal (idempotent: safe to repeat, also by two processes): moves, deletes, staging, marker, journal."""
    for i, (src, dst) in enumerate(journal["moves"]):
        storage.move(fs, src, dst)
        if i == 0:
            _kill_point("after-first-move")
    _kill_point("after-moves")
    for i, path in enumerate(journal["deletes"]):
        storage.remove(fs, path)
        if i == 0:
            _kill_point("after-first-delete")
    for staging in journal["stagings"]:
        storage.remove(fs, staging)
    if storage.is_local(fs):  # directories of deleted old partitions (object stores have none)
        _prune_empty_dirs(journal["manifest"][0].rsplit("/", 1)[0])
    _kill_point("before-manifest")
    path, doc = journal["manifest"]
    storage.put(fs, path, json.dumps(doc, indent=2, sort_keys=True).encode())
    _kill_point("after-manifest")
    lease = _sibling(path.rsplit("/", 1)[0], "lease.json")
    held = storage.read_json(fs, lease) or {}
    if held.get("runId") == journal["runId"]:
        storage.remove(fs, lease)
    storage.remove(fs, _sibling(path.rsplit("/", 1)[0], "journal.json"))


def _prune_empty_dirs(root: str) -> None:
    for dirpath, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
        if dirpath != root and not os.listdir(dirpath):
            os.rmdir(dirpath)


class _deferred_sigterm:  # noqa: N801 - used as a context manager
    """SIGTERM during the journal's execution is held, not acted on: the commit finishes (a commit cut short would be
    completed by the next attempt anyway) and the run then ends as the success it is."""

    def __enter__(self):
        self.got = False
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._hold)
        else:
            self.previous = None
        return self

    def _hold(self, signum, frame) -> None:
        self.got = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
