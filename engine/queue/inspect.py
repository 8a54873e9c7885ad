"""Read-side of the FileQueue: lookups, counts, "why does this wait", recent results,
plus the two janitors (files dropped into queue/ by hand, orphans of a crash mid-move).

Nothing here lists complete/ (it grows forever): counts and recent come from the ledger.
"""

from __future__ import annotations

import bisect
import heapq
import os
import stat
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.event_types import EventType
from engine.model import Attempt, Executor, Task, TaskClass, TaskStatus, TaskValidationError, is_safe_task_id
from engine.queue.fsops import unlink_quiet
from engine.queue.names import QueueName, parse_delayed_name, parse_held_name, parse_needs, parse_processing_name
from engine.queue.protocol import QueueCounts, WaitingLane, WaitingTask

if TYPE_CHECKING:
    from engine.queue.filequeue import FileQueue

SYMLINK_REFUSED = "symlinks are not accepted in queue/ (a task file must be a regular file)"
FOREIGN_SETTLE_S = 1.0  # a hand-dropped file younger than this may still be being written
_GRAB_SUFFIXES = (".finishing", ".reaping", ".releasing", ".cancelling", ".adopting")


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


class QueueInspector:
    def __init__(self, fq: FileQueue) -> None:
        self.fq = fq
        self.p = fq.paths
        self._order_cache: tuple[int, list[tuple[int, int, int, str]], list[tuple[str, QueueName]]] | None = None

    def _read(self, path: Path, where: str) -> Task | None:
        from engine.queue.taskfile import read_task_file

        try:
            return read_task_file(path, where=where)
        except (FileNotFoundError, TaskValidationError):
            return None

    # ---- where is a task ----
    def active_ids(self) -> dict[str, str]:
        """task id -> state for everything not finished (one listdir per small directory)."""
        out: dict[str, str] = {}
        for name in os.listdir(self.p.held):
            hn = parse_held_name(name)
            if hn:
                out[hn.task_id] = "held"
        for name in os.listdir(self.p.delayed):
            dn = parse_delayed_name(name)
            if dn:
                out[dn.task_id] = "delayed"
        for name in os.listdir(self.p.processing):
            pn = parse_processing_name(name)
            if pn:
                out[pn.task_id] = "processing"
        idx = self.fq.index
        idx.sync()
        for task_id in idx.by_id:
            out[task_id] = "queue"
        return out

    def where_is(self, task_id: str, active: dict[str, str] | None) -> str | None:
        if os.path.exists(self.p.complete / f"{task_id}.json"):
            return "complete"
        if os.path.exists(self.p.failed / f"{task_id}.json"):
            return "failed"
        if os.path.exists(self.p.awaiting / f"{task_id}.json"):
            return "awaiting"
        if active is None:
            active = self.active_ids()
        return active.get(task_id)

    def get(self, task_id: str) -> Task | None:
        if not is_safe_task_id(task_id):
            return None  # never a path from a bad id (engine.ids)
        for state, directory in (("complete", self.p.complete), ("failed", self.p.failed)):
            t = self._read(directory / f"{task_id}.json", f"{state}/{task_id}.json")
            if t is not None:
                return t.with_changes(status=TaskStatus(state))
        parked = self.fq.awaiting.get(task_id)
        if parked is not None:
            return parked
        idx = self.fq.index
        idx.sync()
        if task_id in idx.by_id:
            t = self._read(self.p.queue / idx.by_id[task_id], "queue")
            if t is not None:
                return t.with_changes(status=TaskStatus.PENDING)
        for name in os.listdir(self.p.processing):
            pn = parse_processing_name(name)
            if pn and pn.task_id == task_id:
                t = self._read(self.p.processing / name, "processing")
                if t is not None:
                    try:
                        expires = max(pn.first_expiry, os.stat(self.p.processing / name).st_mtime)
                    except FileNotFoundError:
                        expires = pn.first_expiry
                    return t.with_changes(status=TaskStatus.PROCESSING, lease_owner=pn.worker_id,
                                          lease_expires=expires)
        for name in os.listdir(self.p.delayed):
            dn = parse_delayed_name(name)
            if dn and dn.task_id == task_id:
                t = self._read(self.p.delayed / name, "delayed")
                if t is not None:
                    return t.with_changes(status=TaskStatus.PENDING)
        held = self.fq.deps.find_held(task_id)
        if held:
            t = self._read(self.p.held / held, "held")
            if t is not None:
                return t.with_changes(status=TaskStatus.HELD)
        return None

    # ---- counts and views ----
    def counts(self) -> QueueCounts:
        by_state: dict[str, dict[str, int]] = {s: {} for s in
                                               ("held", "delayed", "queue", "processing", "complete", "failed")}

        def bump(state: str, cls: TaskClass | str) -> None:
            key = cls.value if isinstance(cls, TaskClass) else cls
            by_state[state][key] = by_state[state].get(key, 0) + 1

        for name in os.listdir(self.p.held):
            hn = parse_held_name(name)
            if hn:
                bump("held", hn.task_class)
        for name in os.listdir(self.p.delayed):
            dn = parse_delayed_name(name)
            if dn:
                bump("delayed", dn.task_class)
        for name in os.listdir(self.p.processing):
            pn = parse_processing_name(name)
            if pn:
                bump("processing", pn.task_class)
        idx = self.fq.index
        idx.sync()
        lanes: dict[tuple[str, str, str], int] = {}
        for (cls, model, _prio, needs), n in idx.lane_depths().items():
            by_state["queue"][cls] = by_state["queue"].get(cls, 0) + n
            lanes[(cls, model, needs)] = lanes.get((cls, model, needs), 0) + n
        ledger = self.fq.ledger
        ledger.refresh()
        by_state["complete"] = dict(ledger.counts["complete"])
        by_state["failed"] = dict(ledger.counts["failed"])
        awaiting = self.fq.awaiting.counts()  # awaiting approval: not failed (listed only when there are some)
        if awaiting:
            by_state["awaiting"] = awaiting
        return QueueCounts(by_state=by_state, lanes=tuple(waiting_lane(k, n) for k, n in sorted(lanes.items())))

    def oldest_waiting(self, now: float, limit: int) -> list[WaitingTask]:
        out: list[WaitingTask] = []
        idx = self.fq.index
        idx.sync()
        cache = self._order_cache
        if cache is None or cache[0] != idx.version or (limit > len(cache[2]) and len(cache[2]) < len(idx.present)):
            # Sorting a deep queue costs milliseconds: do it once per change, not on every tick.
            entries = list(idx.present.items())
            order = sorted((0 if qn.task_class is TaskClass.RESOURCE else 1, -qn.priority, qn.enqueued_us,
                            qn.task_id) for _, qn in entries)
            oldest = heapq.nsmallest(max(100, limit), entries, key=lambda e: e[1].enqueued_us)
            cache = (idx.version, order, oldest)
            self._order_cache = cache
        _, order, oldest = cache
        for name, qn in oldest[:limit]:
            key = (0 if qn.task_class is TaskClass.RESOURCE else 1, -qn.priority, qn.enqueued_us, qn.task_id)
            ahead = bisect.bisect_left(order, key)
            t = self._read(self.p.queue / name, "queue")
            reason = (f"waiting: priority {qn.priority} behind {ahead}" if ahead
                      else "next in line: waiting for a free worker that takes this class")
            out.append(WaitingTask(qn.task_id, t.name if t else qn.task_id, qn.task_class.value, qn.priority,
                                   qn.enqueued_us / 1e6, reason, model=qn.model,
                                   kind=qn.kind.value if qn.kind else None, executor=qn.executor.value))
        for name in sorted(os.listdir(self.p.delayed))[:limit]:
            dn = parse_delayed_name(name)
            t = self._read(self.p.delayed / name, "delayed") if dn else None
            if dn and t:
                out.append(WaitingTask(dn.task_id, t.name, dn.task_class.value, dn.priority,
                                       t.attempts[-1].ended_at or t.created_at if t.attempts else t.created_at,
                                       f"backoff until {_hms(dn.due_us / 1e6)} (retry {t.retry_count} of "
                                       f"{t.max_retries})"))
        for name in sorted(n for n in os.listdir(self.p.held) if parse_held_name(n))[:limit]:
            hn = parse_held_name(name)
            t = self._read(self.p.held / name, "held")
            if hn and t:
                pending = [d for d in t.depends_on if not os.path.exists(self.p.complete / f"{d}.json")]
                out.append(WaitingTask(hn.task_id, t.name, hn.task_class.value, t.priority, hn.since_us / 1e6,
                                       f"dependency pending: {', '.join(pending) or '(releasing)'}",
                                       depends_on=t.depends_on))
        out.sort(key=lambda w: w.waiting_since)
        return out[:limit]

    def recent(self, state: str, limit: int) -> list[Task]:
        if state == "processing":
            tasks = []
            for name in os.listdir(self.p.processing):
                pn = parse_processing_name(name)
                t = self._read(self.p.processing / name, "processing") if pn else None
                if pn and t:  # the claim (in the file name) is the current, still running, attempt
                    now_try = Attempt(number=len(t.attempts) + 1, worker_id=pn.worker_id, started_at=pn.claimed_at)
                    tasks.append((pn.claimed_us, t.with_changes(status=TaskStatus.PROCESSING, lease_owner=pn.worker_id,
                                                                attempts=t.attempts + (now_try,))))
            tasks.sort(key=lambda x: x[0], reverse=True)
            return [t for _, t in tasks[:limit]]
        if state not in ("complete", "failed"):
            raise ValueError(f"recent() takes complete, failed or processing, not {state!r}")
        ledger = self.fq.ledger
        ledger.refresh()
        out: list[Task] = []
        directory = self.p.complete if state == "complete" else self.p.failed
        for task_id in ledger.recent_ids(state):
            if len(out) >= limit:
                break
            t = self._read(directory / f"{task_id}.json", f"{state}/{task_id}.json")
            if t is not None:
                out.append(t.with_changes(status=TaskStatus(state)))
        return out

    # ---- janitors ----
    def adopt_foreign(self, now: float) -> None:
        """Task files dropped into queue/ by hand, judged together as one ``submit`` would: a
        regular file holding a valid task with a new id, whose dependencies exist (or were
        dropped with it), are not itself and make no cycle. The rest go to failed/ with why."""
        from engine.queue.rejects import reject_file
        from engine.queue.taskfile import read_task_file

        idx = self.fq.index
        dropped: list[tuple[str, Path, Task]] = []
        for name in sorted(idx.foreign):
            src = self.p.queue / name
            try:
                st = os.lstat(src)  # lstat: a symlink is judged as a link, never followed
            except FileNotFoundError:
                idx.foreign.discard(name)
                continue
            link = stat.S_ISLNK(st.st_mode)
            if not link and st.st_mtime > time.time() - FOREIGN_SETTLE_S:
                continue  # maybe still being written; next sync
            idx.foreign.discard(name)
            taken = self.fq.tmp / f"{name[:150]}.adopting"
            try:
                os.rename(src, taken)
            except FileNotFoundError:
                continue
            try:
                if link:
                    raise TaskValidationError(SYMLINK_REFUSED, where=f"queue/{name}")
                dropped.append((name, taken, read_task_file(taken, where=f"queue/{name}")))
            except TaskValidationError as exc:
                reject_file(self.fq, taken, name, str(exc), now)
        refused = self._judge_dropped(dropped) if dropped else {}
        for name, taken, task in dropped:
            if name in refused:
                field = "task_id" if "already exists" in refused[name] else "depends_on"
                reason = TaskValidationError(refused[name], field=field, where=f"queue/{name}")
                reject_file(self.fq, taken, name, str(reason), now)
                continue
            if task.depends_on:
                with self.fq.deps_lock():
                    self.fq.deps.settle(task.task_id, now, self.fq.deps.hold(task, now))
            else:
                self.fq.write_queued(task, now)
            unlink_quiet(taken)
            self.fq.events.emit(EventType.TASK_SUBMITTED, at=now, task_id=task.task_id, model=task.model,
                                source=f"file queue/{name}")
            if task.fix_applied:
                self.fq.events.emit(EventType.TASK_FIXED, at=now, task_id=task.task_id, fix_applied=task.fix_applied)

    def _judge_dropped(self, dropped: list[tuple[str, Path, Task]]) -> dict[str, str]:
        """file name -> why it is refused, for the files that ``submit`` would refuse."""
        active = self.active_ids()
        refused: dict[str, str] = {}
        seen: set[str] = set()
        for name, _, task in dropped:
            if task.task_id in seen or self.where_is(task.task_id, active):
                refused[name] = f"task id {task.task_id!r} already exists"
            seen.add(task.task_id)
        changed = True
        while changed:  # a refused file takes the files that depend on it along
            changed = False
            batch = {t.task_id: t for n, _, t in dropped if n not in refused}
            for name, _, task in dropped:
                why = None if name in refused else _dependency_problem(task, batch, self, active)
                if why is not None:
                    refused[name], changed = why, True
        return refused

    def recover_orphans(self, now: float) -> list[str]:
        """Files left in tasks/.tmp by a process killed half-way through a move.

        A grabbed processing file keeps its name and mtime, so its lease still says whether
        its owner may be alive; it is taken back only once that lease has expired at ``now``
        and the file has sat there ``orphan_age_s`` of real time (a live move takes ms).
        """
        from engine.queue.rejects import reject_file
        from engine.queue.taskfile import read_task_file

        recovered = []
        cutoff = time.time() - self.fq.orphan_age_s
        for name in os.listdir(self.fq.tmp):
            path = self.fq.tmp / name
            try:
                st = os.lstat(path)  # a link left here is judged, never followed
            except FileNotFoundError:
                continue
            if st.st_ctime > cutoff:
                continue
            if name.endswith(".tmp"):
                unlink_quiet(path)
                continue
            if name.endswith(".staged"):  # a submission being written; a dead one's commit renames them first
                if st.st_ctime <= time.time() - 60 * self.fq.orphan_age_s:  # (engine.queue.submit)
                    unlink_quiet(path)
                continue
            if not name.endswith(_GRAB_SUFFIXES):
                continue
            info = parse_processing_name(name.rsplit(".", 1)[0])
            if info is not None and max(info.first_expiry, st.st_mtime) >= now:
                continue  # its owner's lease has not run out
            try:
                task = read_task_file(path, where=f"tasks/.tmp/{name}")
            except FileNotFoundError:
                continue
            except TaskValidationError as exc:  # keep its bytes (failed/<id>.raw), as a claim would
                reject_file(self.fq, path, name.rsplit(".", 1)[0], str(exc), now)
                continue
            if self.where_is(task.task_id, None) is None:
                self.fq.write_queued(task, now)
                recovered.append(task.task_id)
                self.fq.events.emit(EventType.TASK_REQUEUED, at=now, task_id=task.task_id, model=task.model,
                                    reason="recovered after a crash in the middle of a move")
            unlink_quiet(path)
        return recovered


def _dependency_problem(task: Task, batch: dict[str, Task], inspector: QueueInspector,
                        active: dict[str, str]) -> str | None:
    """Why ``task``'s dependencies make it unholdable, or None: itself, unknown, or a cycle
    through tasks dropped with it (it would wait forever)."""
    for dep in task.depends_on:
        if dep == task.task_id:
            return "depends on itself"
        if dep not in batch and not inspector.where_is(dep, active):
            return f"unknown dependency {dep!r}"
    stack, seen = list(task.depends_on), set()
    while stack:
        dep = stack.pop()
        if dep == task.task_id:
            return "dependency cycle through tasks dropped with it"
        if dep in batch and dep not in seen:
            seen.add(dep)
            stack.extend(batch[dep].depends_on)
    return None


def waiting_lane(key: tuple[str, str, str], count: int) -> WaitingLane:
    """A lane of queue/ (class, model, needs token of engine.queue.names) as the stall alert sees it."""
    cls, model, needs = key
    kind, executor = parse_needs(needs) if needs else (None, Executor.WORKER)
    return WaitingLane(cls, model or None, kind.value if kind else None, executor.value, count)
