"""Intent records: a queue operation that passed its commit point is finished exactly once.

A completion (or final failure, cascade step, late adoption, retry out of failed/) is
several writes: the commit file (complete/<id>.json, failed/<id>.json), then the ledger
line, the event, the removal of the grabbed file, the release or cascade of dependents. A
process killed between them used to leave the ledger short and dependents held forever.

Now each such operation first writes an intent record to ``tasks/.journal/`` holding the
exact ledger and event lines it will append, the files it will remove, and the follow-up
(release / cascade). The record's inode is ``flock``-ed by its writer for the whole
operation, so a record anyone else can lock belongs to a dead process. ``recover`` (run by
every ``reap_stale``: worker start, supervisor start, every housekeeping tick) finishes such
records: if the commit file holds exactly the bytes the record names (a hash), every later
step is redone, skipping ledger and event lines already present after the offsets recorded
when the intent was written; if not, the operation never happened and the grabbed task file
is put back in the queue. A second recovery finds no record: it is a no-op.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Self

from engine import safeio
from engine.event_types import EventType
from engine.events import salvage_event
from engine.logsetup import rotated_rest
from engine.model import TaskValidationError
from engine.queue.fsops import WriteError
from engine.queue.ledger import salvage_ledger
from engine.queue.rejects import reject_file
from engine.queue.taskfile import read_task_file

if TYPE_CHECKING:
    from engine.queue.filequeue import FileQueue

_seq = 0
_ANY_SIZE = 1 << 62  # our own files (commit files, ledger, events): their kind is checked, not their size


class Then(StrEnum):
    """What follows the commit (values cross processes: they are in the record)."""

    NOTHING = "nothing"
    RELEASE = "release"  # dependents of a completed task (deps.on_complete)
    CASCADE = "cascade"  # dependents of a failed task (deps.on_failed)
    RETRY = "retry"  # a failed task and its cascade back to waiting (deps.redo_retry)
    SETTLE = "settle"  # held tasks of a submission: release those whose dependencies are done
    RESOLVE = "resolve"  # a failed task resolved another way: out of failed/, cascade back (deps.after_resolve)


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class Intent:
    op: str
    task_id: str
    at: float
    commit: str | None = None  # path under the rig root whose bytes prove the commit; None: the record is the commit
    commit_digest: str | None = None
    ledger: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    unlink: list[str] = field(default_factory=list)  # paths under the root, removed after the commit
    touch: list[str] = field(default_factory=list)
    then: Then = Then.NOTHING
    reason: str = ""
    requeue: str | None = None  # a grabbed task file to put back if the commit never happened
    cascade_root: str | None = None  # CASCADE: the first failure of the chain (None: this task)
    moves: list[list[str]] = field(default_factory=list)  # [staged temp file, destination] renames
    settle: list[list[str]] = field(default_factory=list)  # SETTLE: [task id, held file name]
    ledger_off: int = 0
    events_off: int = 0
    ledger_ino: int = 0  # the file the offsets are in (events.jsonl is rotated by size)
    events_ino: int = 0

    def encode(self) -> bytes:
        d = dict(vars(self))  # every field is a str, number or list of them: no deep copy needed
        d["then"] = self.then.value
        return json.dumps(d, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Intent:
        d = safeio.parse_json("intent", raw)  # deep or non-UTF-8 JSON is a ValueError, never a RecursionError
        d["then"] = Then(d.get("then", "nothing"))
        intent = cls(**d)
        paths = [intent.commit, intent.requeue, *intent.unlink, *intent.touch,
                 *(p for pair in intent.moves for p in pair)]
        for rel in paths:
            if rel is not None and not _inside(rel):
                raise ValueError(f"intent names {rel!r}: only paths inside the rig root")
        return intent


def _inside(rel: object) -> bool:
    """A relative path with no '..' part (recovery never touches anything outside the root)."""
    return isinstance(rel, str) and bool(rel) and not rel.startswith("/") and ".." not in rel.split("/")


class Handle:
    """An intent on disk, locked by us until ``done`` (or our death)."""

    def __init__(self, journal: Journal, intent: Intent, path: str, fd: int) -> None:
        self.journal, self.intent, self.path, self.fd = journal, intent, path, fd

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # on an exception the record stays: recovery decides what happened

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def finish(self) -> None:
        """Do every step after the commit, then drop the record."""
        self.journal.apply(self.intent, recovering=False)
        self.drop()

    def drop(self) -> None:
        self.journal.fq.fs.unlink(self.path)
        self.close()


class Journal:
    def __init__(self, fq: FileQueue) -> None:
        self.fq = fq
        self.root = fq.paths.root
        self._prefix = f"{self.root}/"  # rel() on the hot path: a slice, not os.path.relpath
        self.dir = fq.paths.tasks / ".journal"
        self.dir.mkdir(exist_ok=True)

    def rel(self, path: str | Path) -> str:
        s = str(path)
        return s[len(self._prefix):] if s.startswith(self._prefix) else os.path.relpath(s, self.root)

    def _abs(self, rel: str) -> Path:
        return self.root / rel

    def begin(self, intent: Intent) -> Handle:
        """Write the record, locked from its creation (a record found empty or torn and
        unlocked is left alone while younger than the queue's ``orphan_age_s``: its writer
        may be between its open and its lock)."""
        intent.ledger_off, intent.ledger_ino = _size(self.fq.ledger.path)
        intent.events_off, intent.events_ino = _size(self.fq.events.path)
        global _seq
        _seq += 1
        path = f"{self.dir}/{time.time_ns():020d}.{intent.task_id[:80]}.{intent.op}.{os.getpid()}.{_seq}"
        fd = self.fq.fs.create_locked(path, intent.encode(), fsync=self.fq.fsync)
        return Handle(self, intent, path, fd)

    def committed(self, intent: Intent) -> bool:
        if intent.commit is None:
            return True
        try:  # a FIFO or link planted at the commit's name is not our commit (and never blocks recovery)
            with os.fdopen(safeio.open_regular(self._abs(intent.commit), _ANY_SIZE), "rb") as fh:
                return digest(fh.read()) == intent.commit_digest
        except (OSError, safeio.UnsafeFileError):
            return False

    def apply(self, intent: Intent, *, recovering: bool) -> None:
        """The steps after the commit, in order; each is idempotent when ``recovering``."""
        fq, fs = self.fq, self.fq.fs
        for rel in intent.unlink:
            fs.unlink(self._abs(rel))
        for rel in intent.touch:
            fs.mkdir(self._abs(rel).parent)
            fs.touch(self._abs(rel))
        for src, dest in intent.moves:
            if self._abs(src).exists():  # else moved already (and maybe claimed since)
                fs.rename(self._abs(src), self._abs(dest))
            if self._abs(dest).parent == fq.paths.queue:
                fq.note_queued(self._abs(dest).name)  # our own write: claimable by us at once
        present_l = (_lines_after(fq.ledger.path, intent.ledger_off, intent.ledger_ino, salvage_ledger)
                     if recovering and intent.ledger else set())
        for line in intent.ledger:
            if line not in present_l:
                fq.ledger.append_raw(line)
        present_e = (_lines_after(fq.events.path, intent.events_off, intent.events_ino, salvage_event)
                     if recovering and intent.events else set())
        for line in intent.events:
            if line and line not in present_e:
                fq.events.write_line(line)
        if intent.then is Then.RELEASE:
            fq.deps.on_complete(intent.task_id, intent.at)
        elif intent.then is Then.CASCADE:
            fq.deps.on_failed(intent.task_id, intent.reason, intent.at, root=intent.cascade_root)
        elif intent.then is Then.SETTLE:
            with fq.deps_lock():
                for task_id, name in intent.settle:
                    fq.deps.settle(task_id, intent.at, name)
        elif intent.then is Then.RETRY:
            fq.deps.redo_retry(intent.task_id, intent.at)
        elif intent.then is Then.RESOLVE:
            fq.deps.after_resolve(intent.task_id, intent.at)

    def abort(self, intent: Intent, now: float) -> str | None:
        """The commit never happened: put the grabbed task file back (its owner is dead)."""
        if intent.requeue is None:
            return None
        path = self._abs(intent.requeue)
        fq = self.fq
        try:
            task = read_task_file(path, where=f"tasks/.tmp/{path.name}")
        except FileNotFoundError:
            return None
        except TaskValidationError as exc:
            reject_file(fq, path, path.name.rsplit(".", 1)[0], str(exc), now)
            return None
        if fq.inspector.where_is(task.task_id, None) is None:
            fq.write_queued(task, now)
            fq.events.emit(EventType.TASK_REQUEUED, at=now, task_id=task.task_id, model=task.model,
                           reason=f"recovered: its worker died in the middle of {intent.op}")
        fq.fs.unlink(path)
        return task.task_id

    def recover(self, now: float) -> list[str]:
        """Finish or undo every record whose writer is dead. Returns the task ids touched."""
        done: list[str] = []
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return done
        for name in names:
            path = f"{self.dir}/{name}"
            try:  # never blocks on a FIFO, never follows a link: only our own regular files are intents
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue
            except OSError:
                _drop_foreign(path)  # a link or something unopenable: not an intent we wrote
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    _drop_foreign(path)
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its writer is alive and still at it
                if os.fstat(fd).st_nlink == 0:
                    continue  # finished and removed while we opened it
                try:
                    intent = Intent.decode(os.pread(fd, 1 << 24, 0))
                except (ValueError, TypeError, KeyError):
                    if os.fstat(fd).st_mtime <= time.time() - self.fq.orphan_age_s:
                        self.fq.fs.unlink(path)  # never written whole, so never committed
                    continue
                try:
                    if self.committed(intent):
                        self.apply(intent, recovering=True)
                        done.append(intent.task_id)
                    else:
                        moved = self.abort(intent, now)
                        if moved:
                            done.append(moved)
                except WriteError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        break  # disk still full: the record stays for the next tick
                    raise
                self.fq.fs.unlink(path)
            finally:
                os.close(fd)
        return done


def _drop_foreign(path: str) -> None:
    """Remove what is not an intent file (a link, FIFO, directory); left alone if it cannot be."""
    try:
        os.unlink(path)
    except OSError:
        pass


def _size(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 0, 0
    return st.st_size, st.st_ino


def _lines_after(path: Path, offset: int, ino: int, salvage: Callable[[bytes], bytes | None]) -> set[str]:
    """Lines written at or after ``offset`` of the file with inode ``ino`` (if it was rotated
    since, the rest of ``path.1`` and all of the new file), each also as ``salvage`` reads
    it when a torn fragment is glued in front of it."""
    try:  # a regular file only: a FIFO planted at the log's name must not block recovery
        with os.fdopen(safeio.open_regular(path, _ANY_SIZE), "rb") as fh:
            st = os.fstat(fh.fileno())
            rotated = ino != 0 and st.st_ino != ino
            fh.seek(0 if rotated or offset > st.st_size else offset)
            data = fh.read()
    except (FileNotFoundError, safeio.UnsafeFileError):
        data, rotated = b"", ino != 0
    if rotated:
        data = rotated_rest(path, ino, offset, limit=1 << 28) + data
    out: set[str] = set()
    for raw in data.split(b"\n"):
        if raw:
            out.add(raw.decode(errors="replace"))
            tail = salvage(raw)
            if tail is not None:
                out.add(tail.decode(errors="replace"))
    return out


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []
