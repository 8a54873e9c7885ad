"""Housekeeping and recovery for FileQueue: expired leases, due retries, late results.

Functions of the ``FileQueue`` so these multi-step repairs read in one place (its
``reap_stale``/``promote_due``/``next_due`` call them); the queue supplies the paths, index,
ledger, events and locks they use. ``reap_stale`` first finishes the operations of
dead processes recorded in the intent journal (engine.queue.journal): every worker start,
supervisor start and housekeeping tick rolls them forward.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import Timeout

from engine.event_types import EventType
from engine.model import Attempt, TaskStatus, TaskValidationError
from engine.queue.names import ProcessingName, parse_delayed_name, parse_processing_name, us
from engine.queue.rejects import reject_file
from engine.queue.taskfile import Grabbed, encode, read_task_file

if TYPE_CHECKING:
    from engine.queue.filequeue import FileQueue


def reap_stale(fq: FileQueue, now: float) -> list[str]:
    try:
        fq.reap_lock.acquire(timeout=0)
    except Timeout:
        return []  # someone else is reaping right now
    try:
        reaped = fq.journal.recover(now)  # operations cut short by a dead process: finished once
        for name in os.listdir(fq.paths.processing):
            info = parse_processing_name(name)
            if info is None:
                continue
            path = fq.paths.processing / name
            try:
                mtime = os.stat(path).st_mtime
            except FileNotFoundError:
                continue
            if max(info.first_expiry, mtime) >= now:
                continue
            if _reap_one(fq, path, info, now):
                reaped.append(info.task_id)
        reaped.extend(fq.inspector.recover_orphans(now))  # claims whose owner died mid-move
        return reaped
    finally:
        fq.reap_lock.release()


def _reap_one(fq: FileQueue, path: Path, info: ProcessingName, now: float) -> bool:
    fq.forget_claim(info.task_id)
    held = fq.tmp / f"{path.name}.reaping"
    try:
        fq.fs.rename(path, held)
    except FileNotFoundError:
        return False
    fq.groups.kill_claim(info.task_id, info.worker_id, info.instance)  # its processes die before it is offered again
    try:
        task = read_task_file(held, where=f"processing/{path.name}")
    except (TaskValidationError, FileNotFoundError) as exc:
        reject_file(fq, held, path.name, str(exc), now)
        return True
    g = Grabbed(held, info, task, None)
    attempts = fq.attempt(g, now, "lost", error=f"lease expired: worker {info.worker_id} stopped heartbeating")
    try:
        if task.retry_count < task.max_retries:
            back = task.with_changes(retry_count=task.retry_count + 1, attempts=attempts,
                                     error=f"lease expired on {info.worker_id}")
            fq.write_queued(back, now)
            fq.fs.unlink(held)
            fq.events.emit(EventType.TASK_LOST, at=now, task_id=task.task_id, worker_id=info.worker_id,
                             model=task.model, retry_count=back.retry_count,
                             error="lease expired; returned to the queue")
        else:
            fq.write_failed(task.with_changes(attempts=attempts),
                              f"lease expired {task.retry_count + 1} times (worker lost); gave up", now,
                              worker_id=info.worker_id, unlink=[held])
    except OSError:  # disk full: the claim stays in processing/, reaped again next tick
        fq.fs.rename(held, path)
        raise
    return True


def promote_due(fq: FileQueue, now: float) -> list[str]:
    moved = []
    now_us = us(now)
    for name in sorted(os.listdir(fq.paths.delayed)):
        dn = parse_delayed_name(name)
        if dn is None:
            continue
        if dn.due_us > now_us:
            break
        qname = dn.queue_name(now_us).render()
        try:
            fq.fs.rename(fq.paths.delayed / name, fq.paths.queue / qname)
        except FileNotFoundError:
            continue
        fq.note_queued(qname)
        moved.append(dn.task_id)
        fq.events.emit(EventType.TASK_PROMOTED, at=now, task_id=dn.task_id, model=dn.model)
    return moved


def next_due(fq: FileQueue) -> float | None:
    """When the earliest backoff ends (the worker sleeps until then at most)."""
    for name in sorted(os.listdir(fq.paths.delayed)):
        dn = parse_delayed_name(name)
        if dn is not None:
            return dn.due_us / 1e6
    return None


def adopt_late_completion(fq: FileQueue, task_id: str, worker_id: str, result: dict[str, Any], now: float) -> bool:
    """A reaped worker finished after all: if nobody runs the task now, its result counts.

    The task is waiting again (queue/ or delayed/); taking it from there by rename means
    it will not run a second time. If another worker holds it, the late result is only
    logged (the current holder's completion is the one recorded).
    """
    idx = fq.index
    idx.sync()
    sources: list[tuple[str, str | None]] = []
    if task_id in idx.by_id:
        sources.append((str(fq.paths.queue / idx.by_id[task_id]), idx.by_id[task_id]))
    for name in os.listdir(fq.paths.delayed):
        dn = parse_delayed_name(name)
        if dn is not None and dn.task_id == task_id:
            sources.append((str(fq.paths.delayed / name), None))
    for src, qname in sources:
        held = str(fq.tmp / f"{os.path.basename(src)}.adopting")
        try:
            fq.fs.rename(src, held)
        except FileNotFoundError:
            continue
        if qname is not None:
            idx.remove(qname)
        try:
            task = read_task_file(held, where=os.path.basename(src))
        except (TaskValidationError, FileNotFoundError) as exc:
            reject_file(fq, Path(held), os.path.basename(src), str(exc), now)
            return True
        rc = result.get("return_code") if isinstance(result.get("return_code"), int) else None
        attempt = Attempt(number=len(task.attempts) + 1, worker_id=worker_id, started_at=now, ended_at=now,
                          outcome="ok", return_code=rc, error="finished after its lease had expired")
        final = task.with_changes(status=TaskStatus.COMPLETE, result=result, error=None, not_before=None,
                                  attempts=task.attempts + (attempt,))
        ev = fq.events.render(EventType.TASK_COMPLETED, at=now, task_id=task_id, worker_id=worker_id,
                                task_class=task.task_class.value, retry_count=task.retry_count,
                                late_after_lease=True)
        try:
            fq.commit_completion("adopt", task, held, encode(final), [ev], worker_id, now, ungrab=None)
        except OSError:  # disk full: the task waits again where it was
            fq.fs.rename(held, src)
            raise
        return True
    return False


def late_result(fq: FileQueue, task_id: str, worker_id: str, now: float, what: str, error: str | None = None) -> None:
    """This worker no longer held the task (reaped or cancelled): its result is not counted."""
    state = fq.inspector.where_is(task_id, None) or "unknown"
    kind = EventType.DUPLICATE_COMPLETION if state == "complete" else EventType.LATE_RESULT_DISCARDED
    fq.events.emit(kind, at=now, task_id=task_id, worker_id=worker_id, error=error,
                     reason=f"worker {what} the task after losing its lease; task is now {state}")
