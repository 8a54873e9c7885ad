"""Dependencies: hold, release, cascade failure, and bring back on retry.

Held tasks live in ``brain/private_tasks/`` (the field notes' private list). A reverse
index of empty marker files, ``_deps/<dep_id>/<held file name>``, makes release on
completion cost O(dependents): completing a task with no dependents costs one ``isdir``.
A task that finally fails takes its waiting dependents to failed/ with the root cause
("dependency t3 failed: <reason>") and leaves ``failed/_cascade/<root>/<task_id>``
markers, so ``retry <root>`` brings exactly those back.

Callers hold the deps FileLock (it is re-entrant) for every multi-file change here.
Every step is safe to redo after a crash: a failed dependent's record goes through the
intent journal (engine.queue.journal), a cascade removes a marker only after the dependent
and its own dependents are failed, and a retry cut short is finished by the next one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from engine.event_types import EventType
from engine.model import ERROR_SNIPPET_CHARS, Attempt, Task, TaskStatus, TaskValidationError
from engine.queue.journal import Intent, Then
from engine.queue.ledger import UNFAILED
from engine.queue.ledger import render as ledger_line
from engine.queue.names import HeldName, parse_delayed_name, parse_held_name, parse_processing_name, us
from engine.queue.protocol import DONE, Refusal, Verdict

if TYPE_CHECKING:
    from engine.queue.filequeue import FileQueue


class Dependencies:
    def __init__(self, fq: FileQueue) -> None:
        self.fq = fq
        self.held_dir = fq.paths.held
        self.deps_dir = fq.paths.held / "_deps"
        self.cascade_dir = fq.paths.failed / "_cascade"

    def id_refusal(self, task_id: str) -> Verdict | None:
        """Last line of defence for operator entry points: no path is built from a bad id."""
        from engine.ids import IdKind, InvalidId, id_problem

        why = id_problem(IdKind.TASK, task_id)
        return None if why is None else Verdict.refused(Refusal.INVALID_ID, str(InvalidId(IdKind.TASK, task_id, why)))

    # ---- state of a dependency ----
    def is_complete(self, task_id: str) -> bool:
        return os.path.exists(self.fq.paths.complete / f"{task_id}.json")

    def failed_task(self, task_id: str) -> Task | None:
        path = self.fq.paths.failed / f"{task_id}.json"
        if not path.exists():
            return None
        from engine.queue.taskfile import read_task_file

        try:
            return read_task_file(path, where=f"failed/{task_id}.json")
        except (TaskValidationError, FileNotFoundError):
            return None

    def find_held(self, task_id: str) -> str | None:
        suffix = f"+{task_id}.json"
        for name in os.listdir(self.held_dir):
            if name.endswith(suffix) and parse_held_name(name) is not None:
                return name
        return None

    # ---- hold / release ----
    def hold(self, task: Task, now: float) -> str:
        held = task.with_changes(status=TaskStatus.HELD, lease_owner=None, lease_expires=None)
        name = HeldName(us(now), task.task_class, task.task_id).render()
        fs = self.fq.fs
        try:  # markers first: a held file always has its markers (a marker alone is dropped when read)
            for dep in task.depends_on:
                if not self.is_complete(dep):
                    marker_dir = self.deps_dir / dep
                    fs.mkdir(marker_dir)
                    fs.touch(marker_dir / name)
            fs.write_replace(self.fq.tmp, self.held_dir / name, _encode(held))
        except OSError:  # disk full: no half-held task
            self._drop_markers(name, task)
            raise
        return name

    def settle(self, task_id: str, now: float, name: str | None = None) -> None:
        """Release a held task whose deps are all complete; fail it if one has failed."""
        name = name or self.find_held(task_id)
        if name is None:
            return
        task = self._read_held(name)
        if task is None:
            return
        for dep in task.depends_on:
            failed = self.failed_task(dep)
            if failed is not None:
                root = (failed.result or {}).get("cascade_root", dep)
                root_reason = failed.error or "failed"
                if root != dep and root_reason.startswith("dependency "):
                    root_reason = root_reason.split(": ", 1)[-1]
                self._fail_dependent(name, task, root, root_reason, dep, now)
                self._cascade(task_id, root, root_reason, now)
                return
        if all(self.is_complete(d) for d in task.depends_on):
            self._release(name, task, now)

    def _read_held(self, name: str) -> Task | None:
        from engine.queue.taskfile import read_task_file

        try:
            return read_task_file(self.held_dir / name, where=f"brain/private_tasks/{name}")
        except FileNotFoundError:
            return None
        except TaskValidationError as exc:
            from engine.queue.rejects import reject_file

            reject_file(self.fq, self.held_dir / name, name, str(exc), 0.0)
            return None

    def _drop_markers(self, name: str, task: Task) -> None:
        for dep in task.depends_on:
            self.fq.fs.unlink(self.deps_dir / dep / name)

    def _release(self, name: str, task: Task, now: float) -> None:
        # The queue file is written before the held file goes, so a crash in between leaves
        # both: the next settle must not queue the task a second time.
        if not self._released_already(task.task_id):
            self.fq.write_queued(task, now)
        self.fq.fs.unlink(self.held_dir / name)
        self._drop_markers(name, task)
        self.fq.events.emit(EventType.TASK_RELEASED, at=now, task_id=task.task_id, task_class=task.task_class.value,
                           model=task.model)

    def _released_already(self, task_id: str) -> bool:
        """Is the task past held already (queued, running, delayed or finished)?"""
        p = self.fq.paths
        if os.path.exists(p.complete / f"{task_id}.json") or os.path.exists(p.failed / f"{task_id}.json"):
            return True
        return self._in_flight(task_id)

    def _in_flight(self, task_id: str) -> bool:
        """Queued, running or backed off. Cheap: the in-memory queue index and two small
        directories (one entry per worker, or per backed-off task)."""
        p = self.fq.paths
        idx = self.fq.index
        idx.sync()
        if task_id in idx.by_id and os.path.exists(p.queue / idx.by_id[task_id]):  # a polling index can be stale
            return True
        if any(n.startswith(f"{task_id}+") for n in _listdir(p.processing)):
            return True
        return any(n.endswith(f"+{task_id}.json") for n in _listdir(p.delayed))

    def on_complete(self, task_id: str, now: float) -> None:
        marker_dir = self.deps_dir / task_id
        if not marker_dir.is_dir():
            return
        with self.fq.deps_lock():
            for name in _listdir(marker_dir):
                task = self._read_held(name)
                if task is not None and all(self.is_complete(d) for d in task.depends_on):
                    self._release(name, task, now)
                self.fq.fs.unlink(marker_dir / name)
            self.fq.fs.rmdir(marker_dir)

    # ---- failure cascade ----
    def on_failed(self, task_id: str, reason: str, now: float, root: str | None = None) -> None:
        """Fail what waits on ``task_id``; ``root`` (default: itself) is the first failure."""
        if not (self.deps_dir / task_id).is_dir():
            return
        with self.fq.deps_lock():
            self._cascade(task_id, root or task_id, reason[-ERROR_SNIPPET_CHARS:], now)

    def _cascade(self, failed_id: str, root: str, root_reason: str, now: float) -> None:
        """Fail everything waiting on ``failed_id``. Each dependent's failure is an intent
        whose last step cascades to its own dependents, so a crash part-way is finished by
        recovery (the marker goes with the dependent's held file, in that intent)."""
        marker_dir = self.deps_dir / failed_id
        for name in _listdir(marker_dir):
            task = self._read_held(name)
            if task is not None:
                self._fail_dependent(name, task, root, root_reason, failed_id, now)
            else:
                self.fq.fs.unlink(marker_dir / name)
        self.fq.fs.rmdir(marker_dir)

    def _fail_dependent(self, name: str, task: Task, root: str, root_reason: str, via: str, now: float) -> None:
        reason = f"dependency {root} failed: {root_reason}"
        if via != root:
            reason = f"dependency {root} failed (via {via}): {root_reason}"
        result = {"cascade_root": root, "failed_dependency": via}
        cleanup = [self.held_dir / name] + [self.deps_dir / dep / name for dep in task.depends_on]
        if (self.fq.paths.failed / f"{task.task_id}.json").exists():  # failed by a run cut short: tidy only
            for path in cleanup:
                self.fq.fs.unlink(path)
            return
        self.fq.write_failed(task.with_changes(result=result), reason, now, cascade_root=root,
                             cascade_reason=root_reason, touch=[self.cascade_dir / root / task.task_id],
                             unlink=cleanup)

    # ---- retry ----
    def retry_failed(self, task_id: str, now: float) -> Verdict:
        bad = self.id_refusal(task_id)
        if bad is not None:
            return bad
        task = self.failed_task(task_id)
        if task is None:
            return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not in failed/")
        if task.result and "invalid_file" in task.result:
            return Verdict.refused(Refusal.INVALID_FILE, f"{task_id} was not a valid task file; fix failed/"
                                   f"{task.result.get('raw_file')} and submit it again")
        for dep in task.depends_on:
            if dep != task_id and self.failed_task(dep) is not None:
                return Verdict.refused(Refusal.DEPENDENCY_FAILED, f"dependency {dep} has failed; retry {dep} instead")
        with self.fq.journal.begin(Intent("retry", task_id, now, then=Then.RETRY)) as h:
            h.finish()  # redo_retry; a crash part-way is finished by recovery
        return DONE

    def redo_retry(self, task_id: str, now: float) -> None:
        """Bring ``task_id`` and its cascade back; every step is skipped if done already, so
        a retry cut short by a crash is finished, not queued twice."""
        with self.fq.deps_lock():
            restored = self.restore_cascade(task_id, now)
            task = self.failed_task(task_id)
            own_name = self.find_held(task_id)
            if task is not None:
                if own_name is None and not self._in_flight(task_id):
                    fresh = _fresh(task)
                    if all(self.is_complete(d) for d in fresh.depends_on):
                        self.fq.write_queued(fresh, now)
                    else:
                        own_name = self.hold(fresh, now)
                self._unfail(task, now)
            for dep_id, name in restored:
                self.settle(dep_id, now, name)
            if own_name:
                self.settle(task_id, now, own_name)
            self.drop_cascade_markers(task_id)

    def resolve_failed(self, task_id: str, result: dict[str, object], now: float, note: str) -> Verdict:
        """A failed task answered another way (an approved escalation): record it complete
        with ``result``, and bring back the dependents that failed only because of it."""
        from engine.queue.journal import digest
        from engine.queue.ledger import COMPLETE
        from engine.queue.taskfile import encode

        bad = self.id_refusal(task_id)
        if bad is not None:
            return bad
        task = self.failed_task(task_id)
        if task is None:
            if self.is_complete(task_id):
                return Verdict.refused(Refusal.ALREADY_COMPLETE, f"{task_id} is already complete")
            return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not in failed/")
        final = task.with_changes(status=TaskStatus.COMPLETE, result=dict(result), error=None, lease_owner=None,
                                  lease_expires=None, fix_applied=task.fix_applied)
        fq = self.fq
        data, dest = encode(final), fq.paths.complete / f"{task_id}.json"
        ev = fq.events.render(EventType.TASK_COMPLETED, at=now, task_id=task_id, task_class=task.task_class.value,
                              resolved_by=note)
        intent = Intent("resolve", task_id, now, commit=fq.journal.rel(dest), commit_digest=digest(data),
                        ledger=[ledger_line(now, COMPLETE, task.task_class.value, task_id)],
                        events=[ev] if ev else [], then=Then.RESOLVE)
        with fq.journal.begin(intent) as h:
            try:
                recorded = fq.fs.write_exclusive(fq.tmp, dest, data, fsync=fq.fsync)
            except OSError:
                h.drop()
                raise
            if not recorded:
                h.drop()
                return Verdict.refused(Refusal.ALREADY_COMPLETE, f"{task_id} is already complete")
            h.finish()  # then after_resolve
        return DONE

    def after_resolve(self, task_id: str, now: float) -> None:
        """A resolved task leaves failed/ and its cascade comes back (idempotent)."""
        with self.fq.deps_lock():
            restored = self.restore_cascade(task_id, now)
            task = self.failed_task(task_id)
            if task is not None:
                self._unfail(task, now)
            for dep_id, name in restored:
                self.settle(dep_id, now, name)
            self.drop_cascade_markers(task_id)

    def restore_cascade(self, root: str, now: float) -> list[tuple[str, str]]:
        """Hold again the dependents that failed only because ``root`` did; (task id, held name)."""
        restored = []
        for dep_id in _listdir(self.cascade_dir / root):
            dependent = self.failed_task(dep_id)
            held = self.find_held(dep_id)  # held already by a retry cut short: not a second copy
            if dependent is not None and (dependent.result or {}).get("cascade_root") == root:
                restored.append((dep_id, held or self.hold(_fresh(dependent), now)))  # (hold: markers first)
                self._unfail(dependent, now)
            elif dependent is None and held is not None:
                restored.append((dep_id, held))
        return restored

    def drop_cascade_markers(self, root: str) -> None:
        """Last step of a retry or resolve: its dependents are held (or released) again."""
        for dep_id in _listdir(self.cascade_dir / root):
            self.fq.fs.unlink(self.cascade_dir / root / dep_id)
        self.fq.fs.rmdir(self.cascade_dir / root)

    def _unfail(self, task: Task, now: float) -> None:
        """Out of failed/: the file, the ledger's U line and the event, exactly once (journal)."""
        fq = self.fq
        j = fq.journal
        ev = fq.events.render(EventType.TASK_RETRIED, at=now, task_id=task.task_id, task_class=task.task_class.value,
                              model=task.model)
        intent = Intent("unfail", task.task_id, now, ledger=[ledger_line(now, UNFAILED, task.task_class.value,
                                                                         task.task_id)],
                        events=[ev] if ev else [], unlink=[j.rel(fq.paths.failed / f"{task.task_id}.json")])
        with j.begin(intent) as h:
            h.finish()

    # ---- cancel ----
    def cancel(self, task_id: str, now: float, reason: str) -> Verdict:
        bad = self.id_refusal(task_id)
        if bad is not None:
            return bad
        found = self._take_for_cancel(task_id, now)
        if isinstance(found, Verdict):
            return found
        if found is None:
            return Verdict.refused(Refusal.NOT_FOUND,
                                   f"{task_id} is not waiting or running (already finished, or unknown)")
        path, task, worker, orig = found
        attempts = task.attempts
        if worker is not None:
            attempts += (Attempt(number=len(attempts) + 1, worker_id=worker, started_at=now, ended_at=now,
                                 outcome="cancelled", error=reason),)
        markers = [self.deps_dir / dep / orig.name for dep in task.depends_on] if orig.parent == self.held_dir else []
        try:
            self.fq.write_failed(task.with_changes(attempts=attempts), f"cancelled: {reason}", now,
                                 event=EventType.TASK_CANCELLED, worker_id=worker, unlink=[path, *markers])
        except OSError:  # disk full: the task stays where it was, markers and all
            self.fq.fs.rename(path, orig)
            raise
        return DONE

    def _take_for_cancel(self, task_id: str, now: float) -> tuple[Path, Task, str | None, Path] | Verdict | None:
        """Rename the task's file out of its state directory so no one else can move it."""
        from engine.queue.taskfile import read_task_file

        fq = self.fq
        idx = fq.index
        idx.sync()
        candidates: list[tuple[Path, str | None]] = []
        if task_id in idx.by_id:
            candidates.append((fq.paths.queue / idx.by_id[task_id], None))
        held = self.find_held(task_id)
        if held:
            candidates.append((self.held_dir / held, None))
        for name in os.listdir(fq.paths.delayed):
            dn = parse_delayed_name(name)
            if dn is not None and dn.task_id == task_id:
                candidates.append((fq.paths.delayed / name, None))
        for name in os.listdir(fq.paths.processing):
            pn = parse_processing_name(name)
            if pn is not None and pn.task_id == task_id:
                candidates.append((fq.paths.processing / name, pn.worker_id))
        for path, worker in candidates:
            taken = fq.tmp / f"{path.name}.cancelling"
            try:
                fq.fs.rename(path, taken)
            except FileNotFoundError:
                continue
            try:
                task = read_task_file(taken, where=path.name)
            except TaskValidationError as exc:  # keep the bytes, as a claim would: failed/<id>.raw
                from engine.queue.rejects import reject_file

                reject_file(fq, taken, path.name, str(exc), now)
                return Verdict.refused(Refusal.NOT_FOUND, f"{task_id}: its file was not a valid task ({exc}); "
                                       "moved to failed/")
            return taken, task, worker, path
        return None


def _fresh(task: Task) -> Task:
    return task.with_changes(status=TaskStatus.PENDING, retry_count=0, error=None, result=None, not_before=None,
                             lease_owner=None, lease_expires=None)


def _encode(task: Task) -> bytes:
    from engine.queue.taskfile import encode

    return encode(task)


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _rmdir_quiet(path: Path) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass
