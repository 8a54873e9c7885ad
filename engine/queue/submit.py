"""Writing a checked submission: all of it or none of it, across a full disk and a crash.

Every task file is first written to ``tasks/.tmp`` (``*.staged``), dependency markers are
made, then one intent record (engine.queue.journal) lists the renames, the events and the
held tasks to settle: that record is the commit. A write that fails before it (disk
full) removes everything staged and raises ``WriteError`` naming the file; nothing is
queued. After it, the renames need no space; a crash anywhere after it is finished by
recovery, a crash before it leaves only staged files, which the orphan janitor removes.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    fs, j = fq.fs, fq.journal
    staged: list[tuple[str, str]] = []  # (temp file, destination): held ones first, claimable ones last
    markers: list[str] = []
    events: list[str] = []
    settle: list[list[str]] = []
    try:
        for t in sorted(tasks, key=lambda t: not t.depends_on):
            if t.depends_on:
                body = t.with_changes(status=TaskStatus.HELD, lease_owner=None, lease_expires=None)
                name = HeldName(us(now), t.task_class, t.task_id).render()
                dest = str(fq.paths.held / name)
                for dep in t.depends_on:
                    if not (fq.paths.complete / f"{dep}.json").exists():
                        marker = fq.paths.held / "_deps" / dep / name
                        fs.mkdir(marker.parent)
                        fs.touch(marker)
                        markers.append(str(marker))
                settle.append([t.task_id, name])
            else:
                body = t.with_changes(status=TaskStatus.PENDING, lease_owner=None, lease_expires=None)
                qn = QueueName.for_task(t, us(now))
                dest = str(fq.paths.queue / qn.render())
            tmp = tmp_name(fq.tmp, t.task_id, STAGED)
            staged.append((tmp, dest))
            fs.create(tmp, encode(body), fsync=fq.fsync)
            events.extend(_events(fq, t, now))
        intent = Intent("submit", tasks[0].task_id, now, events=events, then=Then.SETTLE,
                        moves=[[j.rel(a), j.rel(b)] for a, b in staged], settle=settle)
        handle = j.begin(intent)
    except OSError:
        _undo(fq, staged, markers, moved=False)
        raise
    with handle:
        try:
            for tmp, dest in staged:
                fs.rename(tmp, dest)
        except OSError:
            _undo(fq, staged, markers, moved=True)
            handle.drop()
            raise
        handle.finish()  # index, events, settle (a crash from here on: recovery finishes it)


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
