"""Tasks waiting for an operator's decision on their escalation: ``tasks/awaiting/<id>.json``.

A task whose local attempts failed and that qualifies for escalation is not a failure: its
worker puts it here at its failure (``FileQueue.write_awaiting``: never in failed/, its
dependents stay held) and the cloud tier raises its escalation and ``attach``es it. A task
that reached failed/ another way (a lease given up by the reaper, an older version) is parked
by the cloud tier: it leaves failed/ (a ``U`` ledger line, so failure counts and alerts drop
it, and "retry all" never sees it) with its dependents held again. Then exactly one of:

- an answer: complete/ with the answer as result; its dependents are released once;
- a deny (or an expiry whose default is deny): failed/ with "escalation denied by X:
  reason", its dependents fail in cascade, and ``galaxy retry`` runs it locally again
  (so does a send that got no answer: "escalation E failed: ...");
- an expiry whose default is ``retry_local``: back to the queue.

Every move writes the new file before removing the old one, so a crash leaves both at
worst; ``recover`` (run by the cloud tier at start) finishes each such move. The caller
holds nothing: each method takes the queue's deps lock.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from engine.event_types import EventType
from engine.model import Task, TaskStatus, TaskValidationError, is_safe_task_id
from engine.queue.ledger import COMPLETE, UNFAILED
from engine.queue.protocol import DONE, Refusal, Verdict

if TYPE_CHECKING:
    from engine.queue.filequeue import FileQueue

DENIED_PREFIX = "escalation denied by "
RACY_MTIME_NS = 2_000_000_000  # a folder mtime this recent may not change again for the next file
FAILED_BACK = ("escalation ",)  # a failed/ copy whose error starts so was moved there by ``fail``


def denial_reason(by: str | None, reason: str | None) -> str:
    """The failed task's error after a deny: who, and why."""
    return f"{DENIED_PREFIX}{by or 'operator'}: {reason or 'no reason given'}"


class AwaitingTasks:
    def __init__(self, fq: FileQueue) -> None:
        self.fq = fq
        self.dir = fq.paths.awaiting
        self.dir.mkdir(parents=True, exist_ok=True)
        self._counts: dict[str, int] = {}
        self._counts_mtime: int | None = None

    def _path(self, task_id: str) -> str:
        return str(self.dir / f"{task_id}.json")

    def get(self, task_id: str) -> Task | None:
        if not is_safe_task_id(task_id):
            return None
        from engine.queue.taskfile import read_task_file

        try:
            return read_task_file(self._path(task_id), where=f"awaiting/{task_id}.json")
        except (FileNotFoundError, TaskValidationError):
            return None

    def refusal(self, task_id: str) -> str | None:
        """Why retry or cancel leave a parked task alone ("X is awaiting approval of escalation
        E; approve or deny it first"); None when it is not awaiting approval."""
        parked = self.get(task_id)
        if parked is None:
            return None
        esc = (parked.result or {}).get("awaiting_escalation")
        which = f"escalation {esc}" if isinstance(esc, str) and esc else "its escalation"
        return f"{task_id} is awaiting approval of {which}; approve or deny it first"

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".json") and is_safe_task_id(n[:-5]))

    def tasks(self) -> list[Task]:
        return [t for t in (self.get(i) for i in self.ids()) if t is not None]

    def counts(self) -> dict[str, int]:
        """task class -> number awaiting approval. Read again only when the folder changed
        (one stat per snapshot tick otherwise); a just-changed mtime is not trusted."""
        try:
            mtime = os.stat(self.dir).st_mtime_ns
        except FileNotFoundError:
            return {}
        if mtime == self._counts_mtime:
            return dict(self._counts)
        out: dict[str, int] = {}
        for t in self.tasks():
            out[t.task_class.value] = out.get(t.task_class.value, 0) + 1
        self._counts = out
        self._counts_mtime = mtime if time.time_ns() - mtime > RACY_MTIME_NS else None
        return dict(out)

    # ---- failed -> awaiting ----
    def park(self, task_id: str, escalation_id: str, now: float) -> Verdict:
        """Move a failed task here while its escalation awaits a decision (idempotent)."""
        fq = self.fq
        if not is_safe_task_id(task_id):  # it may come from an escalation record: never a path from it
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        with fq.deps_lock():
            task = fq.deps.failed_task(task_id)
            if task is None:
                return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not in failed/")
            parked = task.with_changes(status=TaskStatus.AWAITING_APPROVAL,
                                       result={**(task.result or {}), "awaiting_escalation": escalation_id})
            from engine.queue.taskfile import encode

            fq.fs.write_replace(fq.tmp, self._path(task_id), encode(parked), fsync=fq.fsync)
            self._unfail_parked(task, escalation_id, now)
        return DONE

    def attach(self, task_id: str, escalation_id: str, now: float) -> Verdict:
        """A task its worker parked at its failure (``FileQueue.write_awaiting``: no escalation yet)
        gets the one the cloud tier raised."""
        fq = self.fq
        if not is_safe_task_id(task_id):
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        with fq.deps_lock():
            task = self.get(task_id)
            if task is None:
                return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not awaiting approval")
            have = (task.result or {}).get("awaiting_escalation")
            if have == escalation_id:
                return DONE
            if have:
                return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} awaits escalation {have} already")
            from engine.queue.taskfile import encode

            raised = task.with_changes(result={**(task.result or {}), "awaiting_escalation": escalation_id})
            fq.fs.write_replace(fq.tmp, self._path(task_id), encode(raised), fsync=fq.fsync)
        return DONE

    def _unfail_parked(self, task: Task, escalation_id: str, now: float) -> None:
        """Its dependents are held again (with their markers: released on its completion, failed
        on its deny), then it leaves failed/ (a U line). Each step is safe to repeat."""
        fq = self.fq
        fq.deps.restore_cascade(task.task_id, now)  # not settled: it would see us in failed/ still
        if os.path.exists(fq.paths.failed / f"{task.task_id}.json"):
            fq.fs.unlink(fq.paths.failed / f"{task.task_id}.json")
            fq.ledger.append(now, UNFAILED, task.task_class.value, task.task_id)
            fq.events.emit(EventType.TASK_AWAITING_APPROVAL, at=now, task_id=task.task_id,
                           task_class=task.task_class.value, escalation_id=escalation_id)
        fq.deps.drop_cascade_markers(task.task_id)

    # ---- awaiting -> complete | failed | queue ----
    def resolve(self, task_id: str, result: dict[str, Any], now: float, note: str = "escalation") -> Verdict:
        """The escalation's answer completes the task; dependents are released once."""
        from engine.queue.taskfile import encode

        fq = self.fq
        with fq.deps_lock():
            task = self.get(task_id)
            if task is None:
                return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not awaiting approval")
            final = task.with_changes(status=TaskStatus.COMPLETE, result=dict(result), error=None,
                                      lease_owner=None, lease_expires=None)
            if fq.fs.write_exclusive(fq.tmp, fq.paths.complete / f"{task_id}.json", encode(final), fsync=fq.fsync):
                fq.ledger.append(now, COMPLETE, task.task_class.value, task_id)
                fq.events.emit(EventType.TASK_COMPLETED, at=now, task_id=task_id, task_class=task.task_class.value,
                               resolved_by=note)
            fq.fs.unlink(self._path(task_id))
        fq.deps.on_complete(task_id, now)
        return DONE

    def fail(self, task_id: str, reason: str, now: float,
             event: EventType = EventType.TASK_ESCALATION_DENIED) -> Verdict:
        """To failed/ with ``reason`` (a deny: ``denial_reason``; or a send that got no answer);
        dependents fail in cascade; ``galaxy retry`` runs it locally again."""
        fq = self.fq
        with fq.deps_lock():
            task = self.get(task_id)
            if task is None:
                return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not awaiting approval")
            result = {k: v for k, v in (task.result or {}).items() if k != "awaiting_escalation"} or None
            fq.write_failed(task.with_changes(result=result), reason, now, event=event)
            fq.fs.unlink(self._path(task_id))
        return DONE

    def retry_local(self, task_id: str, now: float) -> Verdict:
        """Back to the queue (an expiry whose safe default is to try locally again)."""
        fq = self.fq
        with fq.deps_lock():
            task = self.get(task_id)
            if task is None:
                return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not awaiting approval")
            fresh = task.with_changes(status=TaskStatus.PENDING, retry_count=0, error=None, result=None,
                                      not_before=None, lease_owner=None, lease_expires=None)
            fq.write_queued(fresh, now)
            fq.fs.unlink(self._path(task_id))
            fq.events.emit(EventType.TASK_RETRIED, at=now, task_id=task_id, task_class=task.task_class.value,
                           model=task.model)
        return DONE

    # ---- after a crash ----
    def recover(self, now: float) -> list[str]:
        """Finish moves a crash cut short (a task both here and in complete/ or failed/)."""
        fq = self.fq
        done = []
        for task_id in self.ids():
            in_complete = os.path.exists(fq.paths.complete / f"{task_id}.json")
            failed = fq.deps.failed_task(task_id)
            if not in_complete and failed is None:
                continue
            with fq.deps_lock():
                task = self.get(task_id)
                if task is None:
                    continue
                if in_complete or (failed is not None and (failed.error or "").startswith(FAILED_BACK)):
                    fq.fs.unlink(self._path(task_id))  # the answer or the deny was recorded already
                else:
                    self._unfail_parked(task, str((task.result or {}).get("awaiting_escalation", "")), now)
            if in_complete:
                fq.deps.on_complete(task_id, now)
            done.append(task_id)
        return done
