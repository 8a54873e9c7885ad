"""Writing a checked submission: all of it or none of it, across a full disk and a crash.

Every task file is first written to ``tasks/.tmp`` (``*.staged``), dependency markers are
made, then one intent record (engine.queue.journal) lists the renames, the events and the
held tasks to settle: that record is the commit. A write that fails before it (disk
full) removes everything staged and raises ``WriteError`` naming the file; nothing is
queued. After it, the renames need no space; a crash anywhere after it is finished by
recovery, a crash before it leaves only staged files, which the orphan janitor removes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from engine.event_types import EventType
from engine.model import Task, TaskStatus
from engine.queue.fsops import tmp_name
from engine.queue.journal import Intent, Then
from engine.queue.names import HeldName, QueueName, us
from engine.queue.taskfile import encode

if TYPE_CHECKING:
    from engine.queue.filequeue import FileQueue

STAGED = "staged"


def write_batch(fq: FileQueue, tasks: Sequence[Task], now: float) -> None:
    if not tasks:
        return
    batch = StagedBatch(fq, now)
    with batch.staging():
        for t in sorted(tasks, key=lambda t: not t.depends_on):
            if t.depends_on:
                batch.stage_held(t)
            else:
                batch.stage(t.with_changes(status=TaskStatus.PENDING, lease_owner=None, lease_expires=None),
                            fq.paths.queue / QueueName.for_task(t, us(now)).render())
            batch.events.extend(_events(fq, t, now))
    batch.commit("submit", tasks[0].task_id)


class StagedBatch:
    """Task files staged in ``tasks/.tmp``, then committed by one intent record (the renames, the
    ledger and event lines, the held tasks to settle): shared by submit and restore."""

    def __init__(self, fq: FileQueue, now: float) -> None:
        self.fq, self.now = fq, now
        self.staged: list[tuple[str, str]] = []  # (temp file, destination)
        self.markers: list[str] = []
        self.events: list[str] = []
        self.ledger: list[str] = []
        self.settle: list[list[str]] = []

    def stage(self, body: Task, dest: Path) -> None:
        tmp = tmp_name(self.fq.tmp, body.task_id, STAGED)
        self.staged.append((tmp, str(dest)))
        self.fq.fs.create(tmp, encode(body), fsync=self.fq.fsync)

    def stage_held(self, t: Task, done: frozenset[str] = frozenset()) -> None:
        """Held on its dependencies: a marker for each one not complete (nor in ``done``, completed
        by this batch), settled after the commit (released at once when none is left)."""
        fq = self.fq
        name = HeldName(us(self.now), t.task_class, t.task_id).render()
        for dep in t.depends_on:
            if dep not in done and not (fq.paths.complete / f"{dep}.json").exists():
                marker = fq.paths.held / "_deps" / dep / name
                fq.fs.mkdir(marker.parent)
                fq.fs.touch(marker)
                self.markers.append(str(marker))
        self.settle.append([t.task_id, name])
        self.stage(t.with_changes(status=TaskStatus.HELD, lease_owner=None, lease_expires=None), fq.paths.held / name)

    @contextmanager
    def staging(self) -> Iterator[None]:
        """Stage, then write the intent record (the commit); a write that fails removes what was staged."""
        try:
            yield
        except OSError:
            self._undo(moved=False)
            raise

    def commit(self, op: str, first_id: str) -> None:
        fq, j = self.fq, self.fq.journal
        intent = Intent(op, first_id, self.now, events=self.events, ledger=self.ledger, then=Then.SETTLE,
                        moves=[[j.rel(a), j.rel(b)] for a, b in self.staged], settle=self.settle)
        try:
            handle = j.begin(intent)
        except OSError:
            self._undo(moved=False)
            raise
        with handle:
            try:
                for tmp, dest in self.staged:
                    fq.fs.rename(tmp, dest)
            except OSError:
                self._undo(moved=True)
                handle.drop()
                raise
            handle.finish()  # index, ledger, events, settle (a crash from here on: recovery finishes it)

    def _undo(self, *, moved: bool) -> None:
        _undo(self.fq, self.staged, self.markers, moved=moved)


def _undo(fq: FileQueue, staged: list[tuple[str, str]], markers: list[str], *, moved: bool) -> None:
    for tmp, dest in staged:
        fq.fs.unlink(tmp)
        if moved:
            fq.fs.unlink(dest)
    for marker in markers:
        fq.fs.unlink(marker)


def _events(fq: FileQueue, t: Task, now: float) -> list[str]:
    held = bool(t.depends_on)
    out = [fq.events.render(EventType.TASK_HELD if held else EventType.TASK_SUBMITTED, at=now, task_id=t.task_id,
                            task_class=t.task_class.value, model=t.model, priority=t.priority, source=t.source,
                            depends_on=list(t.depends_on) or None)]
    if t.fix_applied:
        out.append(fq.events.render(EventType.TASK_FIXED, at=now, task_id=t.task_id, fix_applied=t.fix_applied))
    return [e for e in out if e]
