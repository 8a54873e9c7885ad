"""FileQueue: the TaskQueue protocol over the rig's shared directories.

A task's directory is its state; every move is one ``os.rename`` and every write goes
through a temp file (engine.queue.fsops). Claiming reads no file to choose: the sort key
is in the name, the per-process QueueIndex offers only lane heads to the ClaimPolicy, and
the claim is a rename into processing/ (losing a race is a FileNotFoundError: try the
next head). No global lock on the claim path: a FileLock guards only dependency release,
retry/cancel and reaping, which touch several files at once.

The lease: the processing name holds owner, claim time and first lease; each heartbeat
sets the file's mtime to the new expiry. Expired = max(first expiry, mtime) < now.
Layout and rules: docs/queue.md.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from engine.event_types import EventType
from engine.events import EventLog
from engine.model import ERROR_SNIPPET_CHARS, Attempt, Task, TaskStatus, TaskValidationError, is_safe_task_id
from engine.paths import RigPaths
from engine.proctable import current_instance
from engine.queue import forget, place_ids, recovery
from engine.queue.awaiting import AwaitingTasks
from engine.queue.deps import Dependencies
from engine.queue.fsops import REAL_FS, FsOps
from engine.queue.index import QueueIndex
from engine.queue.inspect import QueueInspector
from engine.queue.journal import Intent, Journal, Then, digest
from engine.queue.ledger import COMPLETE, FAILED, Ledger
from engine.queue.ledger import render as ledger_line
from engine.queue.names import (
    DelayedName,
    ProcessingName,
    QueueName,
    is_safe_worker_id,
    model_fits_name,
    parse_processing_name,
    us,
)
from engine.queue.protocol import (
    Candidate,
    ClaimPolicy,
    ClaimView,
    EscalationRule,
    Place,
    QueueCounts,
    Refusal,
    Verdict,
    WaitingTask,
)
from engine.queue.rejects import reject_file
from engine.queue.restore import restore_batch
from engine.queue.submit import write_batch
from engine.queue.taskfile import Grabbed, encode, read_task_file
from engine.taskgroups import TaskGroups

DEFAULT_BACKOFF_BASE_S = 10.0
DEFAULT_BACKOFF_CAP_S = 600.0


@dataclass
class _Claim:
    pname: str
    info: ProcessingName
    task: Task
    enqueued_us: int


class FileQueue:
    def __init__(self, paths: RigPaths, *, events: EventLog | None = None, rng: random.Random | None = None,
                 backoff_base_s: float = DEFAULT_BACKOFF_BASE_S, backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S,
                 use_inotify: bool = True, rescan_s: float = 30.0, fsync: bool = False,
                 orphan_age_s: float = 10.0, groups: TaskGroups | None = None, fs: FsOps | None = None) -> None:
        self.paths = paths.ensure()
        self.fs: FsOps = fs or REAL_FS  # every write step goes through it (a test can crash after any one)
        self.tmp = paths.tasks / ".tmp"
        self.tmp.mkdir(exist_ok=True)
        # plain strings on the hot path: pathlib joins cost more than the syscalls they feed
        self._q, self._p, self._c = str(paths.queue), str(paths.processing), str(paths.complete)
        self._t = str(self.tmp)
        self.events = events if events is not None else EventLog(paths.events)
        self._owns_events = events is None  # close() releases only a log it opened itself
        self.rng = rng or random.Random()
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.fsync = fsync
        self.orphan_age_s = orphan_age_s  # a grabbed file older than this (real time) was left by a crash
        self._use_inotify = use_inotify
        self._rescan_s = rescan_s
        self._index: QueueIndex | None = None
        self._claims: dict[str, _Claim] = {}
        self.claim_conflicts = 0  # claims lost to another worker (a rename that found nothing)
        self.ledger = Ledger(paths.tasks / "ledger.log", fs=self.fs)
        self.deps = Dependencies(self)
        self.inspector = QueueInspector(self)
        self.awaiting = AwaitingTasks(self)  # tasks whose escalation awaits a decision (engine/queue/awaiting.py)
        self.journal = Journal(self)
        self._deps_lock = FileLock(str(paths.locks / "deps.lock"))
        self.reap_lock = FileLock(str(paths.locks / "reap.lock"))  # one reaper at a time, across processes
        self.groups = groups if groups is not None else TaskGroups(paths)  # reaping kills a claim's processes

    # ------------------------------------------------------------------ plumbing
    @property
    def index(self) -> QueueIndex:
        if self._index is None:
            self._index = QueueIndex(self.paths.queue, rescan_s=self._rescan_s, use_inotify=self._use_inotify)
        return self._index

    def close(self) -> None:
        """Release the index's watch and, when this queue opened its own event log, that log's descriptor."""
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._owns_events:
            self.events.close()

    def watch(self, path: Path, names: frozenset[str] | None = None) -> None:
        """Also wake ``wait_for_change`` on changes in directory ``path`` (only to ``names``
        in it, when given: the worker's own control file)."""
        self.index.add_watch(path, names=names)

    def wait_for_change(self, timeout_s: float, *, wake_fd: int | None = None) -> bool:
        """Sleep until queue/ changes (inotify), ``wake_fd`` is readable, or the timeout."""
        return self.index.wait(timeout_s, () if wake_fd is None else (wake_fd,))

    def wakes_on_change(self) -> bool:
        """inotify is watching queue/ (Linux); without it a wait sleeps out its timeout."""
        return self.index.live

    def deps_lock(self) -> FileLock:
        return self._deps_lock

    def note_queued(self, name: str) -> None:
        """A queue/ file this process just wrote or moved there: claimable by our next claim at
        once, without waiting for inotify."""
        if self._index is not None:
            self._index.add(name)

    def forget_claim(self, task_id: str) -> None:
        """This process's memory of a claim that someone else ended (reaped)."""
        self._claims.pop(task_id, None)

    # ---- recovery of dead workers' claims and due retries (engine.queue.recovery) ----
    def reap_stale(self, now: float) -> list[str]:
        return recovery.reap_stale(self, now)

    def promote_due(self, now: float) -> list[str]:
        return recovery.promote_due(self, now)

    def next_due(self) -> float | None:
        return recovery.next_due(self)

    def backoff_s(self, retry_number: int) -> float:
        """Exponential backoff with jitter: base * 2^(n-1), capped, times a factor in [0.5, 1.5)."""
        raw = min(self.backoff_cap_s, self.backoff_base_s * (2.0 ** max(0, retry_number - 1)))
        return raw * (0.5 + self.rng.random())

    def write_queued(self, task: Task, now: float, enqueued_us: int | None = None) -> str:
        task = task.with_changes(status=TaskStatus.PENDING, lease_owner=None, lease_expires=None)
        qn = QueueName.for_task(task, enqueued_us or us(now))  # records type/executor for claims
        name = qn.render()
        self.fs.write_replace(self._t, f"{self._q}/{name}", encode(task), fsync=self.fsync)
        self.note_queued(name)  # our own write is visible to our next claim without waiting for inotify
        return name

    def write_failed(self, task: Task, reason: str, now: float, *, event: EventType = EventType.TASK_FAILED,
                     worker_id: str | None = None, cascade: bool = True, unlink: Sequence[str | Path] = (),
                     touch: Sequence[str | Path] = (), requeue: str | Path | None = None,
                     cascade_root: str | None = None, cascade_reason: str | None = None) -> None:
        """Record a final failure through the intent journal: the failed file, its ledger
        line, its event, the removal of ``unlink``, markers ``touch`` and the cascade happen
        exactly once even if this process dies half-way. A write error before the failed
        file exists leaves everything as it was (the intent is dropped) and is raised."""
        final = task.with_changes(status=TaskStatus.FAILED, error=reason, lease_owner=None, lease_expires=None)
        data = encode(final)
        dest = self.paths.failed / f"{task.task_id}.json"
        ev = self.events.render(event, at=now, task_id=task.task_id, worker_id=worker_id, error=reason,
                                task_class=task.task_class.value, retry_count=task.retry_count)
        intent = self._intent("fail", task, now, dest, data, FAILED, [ev], unlink=unlink, touch=touch,
                              then=Then.CASCADE if cascade else Then.NOTHING, requeue=requeue,
                              reason=cascade_reason if cascade_reason is not None else reason)
        intent.cascade_root = cascade_root
        self._journaled_write(intent, dest, data)

    def write_awaiting(self, task: Task, error: str, why: str, now: float, *, worker_id: str,
                       unlink: Sequence[str | Path], requeue: str | Path) -> None:
        """A task that failed for good and qualifies for escalation (``why``) waits for an operator
        from its failure on: awaiting/ with no escalation yet (the cloud tier raises one), never
        failed/ (no ledger line, no failure event, its dependents stay held). Through the journal,
        like ``write_failed``."""
        parked = task.with_changes(status=TaskStatus.AWAITING_APPROVAL, error=error, lease_owner=None,
                                   lease_expires=None, result={**(task.result or {}), "awaiting_escalation": ""})
        data = encode(parked)
        dest = self.paths.awaiting / f"{task.task_id}.json"
        ev = self.events.render(EventType.TASK_AWAITING_APPROVAL, at=now, task_id=task.task_id, worker_id=worker_id,
                                error=error, reason=why, task_class=task.task_class.value)
        self._journaled_write(self._intent("await", task, now, dest, data, None, [ev], unlink=unlink,
                                           requeue=requeue), dest, data)

    def _journaled_write(self, intent: Intent, dest: Path, data: bytes) -> None:
        """``dest`` is ``intent``'s commit: once written, the rest of the intent happens exactly once, even
        across a crash; a write error drops the intent (nothing happened) and is raised."""
        with self.journal.begin(intent) as h:
            try:
                self.fs.write_replace(self.tmp, dest, data, fsync=self.fsync)
            except OSError:
                h.drop()
                raise
            h.finish()

    def _intent(self, op: str, task: Task, now: float, commit: str | Path, data: bytes, kind: str | None,
                events: Sequence[str], *, unlink: Sequence[str | Path] = (), touch: Sequence[str | Path] = (),
                then: Then = Then.NOTHING, reason: str = "", requeue: str | Path | None = None) -> Intent:
        j = self.journal
        return Intent(op, task.task_id, now, commit=j.rel(commit), commit_digest=digest(data),
                      ledger=[ledger_line(now, kind, task.task_class.value, task.task_id)] if kind else [],
                      events=[e for e in events if e], unlink=[j.rel(p) for p in unlink],
                      touch=[j.rel(p) for p in touch], then=then, reason=reason,
                      requeue=j.rel(requeue) if requeue else None)

    def _ungrab(self, g: Grabbed) -> None:
        """A finish that could not be written (disk full): the claim goes back where it was,
        still visible in processing/ with its lease (reaped and rerun if it runs out)."""
        base = os.path.basename(str(g.path)).rsplit(".", 1)[0]
        try:
            self.fs.rename(g.path, f"{self._p}/{base}")
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------------ submit
    def submit(self, tasks: Sequence[Task], now: float) -> list[str]:
        """All-or-nothing: every task is checked (ids, models, dependencies) before any is
        written, and written all or none (engine.queue.submit): a full disk queues nothing."""
        tasks = [t if t.created_at else t.with_changes(created_at=now) for t in tasks]
        batch_ids = [t.task_id for t in tasks]
        problems: list[str] = []
        if len(set(batch_ids)) != len(batch_ids):
            dupes = sorted({i for i in batch_ids if batch_ids.count(i) > 1})
            problems.append(f"duplicate task id(s) in this submission: {', '.join(dupes)}")
        active = self.inspector.active_ids()
        batch = set(batch_ids)
        for t in tasks:
            where = self.inspector.where_is(t.task_id, active)
            if where:
                problems.append(f"task {t.task_id}: id already exists ({where})")
            if not model_fits_name(t.model):
                problems.append(f"task {t.task_id}: model name is too long")
            for dep in t.depends_on:
                if dep == t.task_id:
                    problems.append(f"task {t.task_id}: depends on itself")
                elif dep not in batch and not self.inspector.where_is(dep, active):
                    problems.append(f"task {t.task_id}: unknown dependency {dep!r}")
        if problems:
            raise TaskValidationError("; ".join(problems))
        write_batch(self, tasks, now)
        return batch_ids

    # ------------------------------------------------------------------ claim
    def claim(self, worker_id: str, now: float, policy: ClaimPolicy, lease_s: float) -> Task | None:
        if not is_safe_worker_id(worker_id):
            raise ValueError(f"worker id {worker_id!r} must be letters, digits, '_', '-', '.' (max 64)")
        idx = self.index
        idx.sync()
        if idx.foreign:
            self.inspector.adopt_foreign(now)
        for _ in range(100_000):
            heads = {qn.task_id: (qn, name, depth) for qn, name, depth in idx.heads()}
            if not heads:
                return None
            candidates = [Candidate(qn.task_id, qn.task_class, qn.model, qn.priority, qn.enqueued_us / 1e6, depth,
                                    kind=qn.kind, executor=qn.executor)
                          for qn, _, depth in heads.values()]
            ranked = policy(candidates, now)
            if not ranked:
                return None
            qn, name, _ = heads[ranked[0].task_id]
            info = ProcessingName(qn.task_id, qn.task_class, worker_id, us(now), max(1, int(lease_s * 1000)),
                                  current_instance())
            pname = info.render()
            ppath = f"{self._p}/{pname}"
            try:
                self.fs.rename(f"{self._q}/{name}", ppath)
            except FileNotFoundError:  # another worker was faster: learn what else moved, next head
                self.claim_conflicts += 1
                idx.remove(name)
                idx.sync()
                continue
            idx.remove(name)
            try:  # the queue file's mtime is its enqueue time on the real clock; the lease rules now
                self.fs.utime(ppath, info.first_expiry)
            except FileNotFoundError:
                continue
            task = self._load_claimed(pname, name, info, now)
            if task is not None:
                self._claims[task.task_id] = _Claim(pname, info, task, qn.enqueued_us)
                return task.with_changes(status=TaskStatus.PROCESSING, lease_owner=worker_id,
                                         lease_expires=info.first_expiry)
        return None

    def _load_claimed(self, pname: str, qname: str, info: ProcessingName, now: float) -> Task | None:
        path = f"{self._p}/{pname}"
        try:
            task = read_task_file(path, where=f"queue/{qname}")
            if task.task_id != info.task_id:
                raise TaskValidationError(f"task_id {task.task_id!r} does not match the file name", field="task_id",
                                          where=f"queue/{qname}")
        except TaskValidationError as exc:
            reject_file(self, Path(path), qname, str(exc), now)
            return None
        except FileNotFoundError:  # cancelled or reaped in the instant after our rename
            return None
        if os.path.exists(f"{self._c}/{task.task_id}.json"):
            self.fs.unlink(path)
            self.events.emit(EventType.DUPLICATE_CLAIM_DROPPED, at=now, task_id=task.task_id, worker_id=info.worker_id,
                             error="task already complete; a stale copy was dropped")
            return None
        self.events.emit(EventType.TASK_CLAIMED, at=now, task_id=task.task_id, worker_id=info.worker_id,
                         task_class=task.task_class.value, retry_count=task.retry_count)
        return task

    # ------------------------------------------------------------------ leases
    def _processing_path(self, task_id: str, worker_id: str) -> tuple[str, ProcessingName] | None:
        claim = self._claims.get(task_id)
        if claim is not None and claim.info.worker_id == worker_id:
            return f"{self._p}/{claim.pname}", claim.info
        prefix = f"{task_id}+"
        for name in os.listdir(self.paths.processing):
            if name.startswith(prefix):
                info = parse_processing_name(name)
                if info is not None and info.worker_id == worker_id:
                    return f"{self._p}/{name}", info
        return None

    def heartbeat(self, task_id: str, worker_id: str, now: float, lease_s: float) -> bool:
        found = self._processing_path(task_id, worker_id)
        if found is None:
            return False
        expires = now + lease_s
        try:
            os.utime(found[0], (expires, expires), follow_symlinks=False)  # never touch what a link names
            return True
        except FileNotFoundError:
            return False

    def _grab(self, task_id: str, worker_id: str, suffix: str) -> Grabbed | None:
        """Take the processing file out of everyone's reach (reaper, cancel) before finishing it."""
        found = self._processing_path(task_id, worker_id)
        claim = self._claims.pop(task_id, None)
        if found is None:
            return None
        path, info = found
        base = os.path.basename(path)
        held = f"{self._t}/{base}.{suffix}"
        try:
            self.fs.rename(path, held)
        except FileNotFoundError:
            return None
        if claim is not None:
            return Grabbed(held, info, claim.task, claim.enqueued_us)
        try:
            task = read_task_file(held, where=f"processing/{base}")
        except (TaskValidationError, FileNotFoundError) as exc:
            reject_file(self, Path(held), base, str(exc), 0.0)
            return None
        return Grabbed(held, info, task, None)

    def attempt(self, g: Grabbed, now: float, outcome: str, *, error: str | None = None,
                 return_code: int | None = None) -> tuple[Attempt, ...]:
        a = Attempt(number=len(g.task.attempts) + 1, worker_id=g.info.worker_id, started_at=g.info.claimed_at,
                    ended_at=now, outcome=outcome, return_code=return_code,
                    error=error[-ERROR_SNIPPET_CHARS:] if error else None)
        return g.task.attempts + (a,)

    # ------------------------------------------------------------------ outcomes
    def complete(self, task_id: str, worker_id: str, result: dict[str, Any], now: float) -> None:
        g = self._grab(task_id, worker_id, "finishing")
        if g is None:
            if not recovery.adopt_late_completion(self, task_id, worker_id, result, now):
                recovery.late_result(self, task_id, worker_id, now, "completed")
            return
        rc = result.get("return_code") if isinstance(result.get("return_code"), int) else None
        final = g.task.with_changes(status=TaskStatus.COMPLETE, result=result, error=None, lease_owner=None,
                                    lease_expires=None, attempts=self.attempt(g, now, "ok", return_code=rc))
        tokens = result.get("tokens_generated")
        ev = self.events.render(EventType.TASK_COMPLETED, at=now, task_id=task_id, worker_id=worker_id,
                                duration_ms=(now - g.info.claimed_at) * 1000.0,
                                tokens_generated=tokens if isinstance(tokens, int) else None,
                                task_class=g.task.task_class.value, retry_count=g.task.retry_count,
                                return_code=rc, fix_applied=g.task.fix_applied)
        self.commit_completion("complete", g.task, g.path, encode(final), [ev], worker_id, now, ungrab=g)

    def commit_completion(self, op: str, task: Task, held: str | Path, data: bytes, events: list[str],
                           worker_id: str, now: float, *, ungrab: Grabbed | None) -> None:
        """complete/<id>.json once, then (exactly once, even across a crash: the intent
        journal) the ledger line, the event, the held file's removal, the dependents' release."""
        dest = f"{self._c}/{task.task_id}.json"
        intent = self._intent(op, task, now, dest, data, COMPLETE, events, unlink=[held], then=Then.RELEASE,
                              requeue=held)
        try:
            h = self.journal.begin(intent)
        except OSError:
            if ungrab is not None:
                self._ungrab(ungrab)
            raise
        with h:
            try:
                recorded = self.fs.write_exclusive(self._t, dest, data, fsync=self.fsync)
            except OSError:
                h.drop()
                if ungrab is not None:
                    self._ungrab(ungrab)
                raise
            if recorded:
                h.finish()
                return
            self.fs.unlink(held)
            h.drop()
        self.events.emit(EventType.DUPLICATE_COMPLETION, at=now, task_id=task.task_id, worker_id=worker_id,
                         error="already complete; this result was not recorded")

    def fail(self, task_id: str, worker_id: str, error: str, now: float, *, retryable: bool = True,
             return_code: int | None = None, escalate: EscalationRule | None = None) -> None:
        g = self._grab(task_id, worker_id, "finishing")
        if g is None:
            recovery.late_result(self, task_id, worker_id, now, "failed", error=error)
            return
        outcome = "timeout" if "timed out" in error else "error"
        attempts = self.attempt(g, now, outcome, error=error, return_code=return_code)
        snippet = error[-ERROR_SNIPPET_CHARS:]
        task = g.task
        if retryable and task.retry_count < task.max_retries:
            n = task.retry_count + 1
            due = now + self.backoff_s(n)
            nxt = task.with_changes(status=TaskStatus.PENDING, retry_count=n, not_before=due, attempts=attempts,
                                    error=snippet, lease_owner=None, lease_expires=None)
            dn = DelayedName.for_task(task, us(due))
            data, dest = encode(nxt), self.paths.delayed / dn.render()
            ev = self.events.render(EventType.TASK_RETRY_SCHEDULED, at=now, task_id=task_id, worker_id=worker_id,
                                    error=snippet, duration_ms=(now - g.info.claimed_at) * 1000.0, retry_count=n,
                                    not_before=due, return_code=return_code)
            try:
                self._journaled_write(self._intent("retry_later", task, now, dest, data, None, [ev],
                                                   unlink=[g.path], requeue=g.path), dest, data)
            except OSError:
                self._ungrab(g)
                raise
            return
        why = snippet if not retryable else f"{snippet} (gave up after {task.retry_count + 1} attempts)"
        last = task.with_changes(attempts=attempts)
        escalation = escalate(last.with_changes(error=why)) if escalate is not None else None
        try:
            if escalation is not None:
                self.write_awaiting(last, why, escalation, now, worker_id=worker_id, unlink=[g.path], requeue=g.path)
            else:
                self.write_failed(last, why, now, worker_id=worker_id, unlink=[g.path], requeue=g.path)
        except OSError:
            self._ungrab(g)
            raise

    def release(self, task_id: str, worker_id: str, now: float, reason: str) -> None:
        g = self._grab(task_id, worker_id, "releasing")
        if g is None:
            return
        back = g.task.with_changes(attempts=self.attempt(g, now, "released", error=reason))
        try:
            self.write_queued(back, now, enqueued_us=g.enqueued_us)
        except OSError:
            self._ungrab(g)
            raise
        self.fs.unlink(g.path)
        self.events.emit(EventType.TASK_HANDED_BACK, at=now, task_id=task_id, worker_id=worker_id, reason=reason)

    # ------------------------------------------------------------------ operator actions
    def retry(self, task_id: str, now: float) -> Verdict:
        parked = self.awaiting.refusal(task_id)
        if parked is not None:
            return Verdict.refused(Refusal.AWAITING_APPROVAL, parked)
        with self._deps_lock:
            return self.deps.retry_failed(task_id, now)

    def resolve_failed(self, task_id: str, result: dict[str, Any], now: float,
                       note: str = "escalation") -> Verdict:
        """Complete a failed task with a result found elsewhere (an approved escalation)."""
        if self.awaiting.get(task_id) is not None:  # parked while its escalation was decided
            return self.awaiting.resolve(task_id, result, now, note)
        with self._deps_lock:
            return self.deps.resolve_failed(task_id, result, now, note)

    def retry_all_failed(self, now: float) -> list[str]:
        ids = sorted(n[:-5] for n in os.listdir(self.paths.failed) if n.endswith(".json"))
        return [i for i in ids if self.retry(i, now)]

    def cancel(self, task_id: str, now: float, reason: str) -> Verdict:
        if self.awaiting.get(task_id) is not None:
            return Verdict.refused(Refusal.AWAITING_APPROVAL, f"{task_id} is awaiting approval of its escalation; "
                                   "`galaxy deny ESCALATION --reason ...` fails it instead")
        with self._deps_lock:
            return self.deps.cancel(task_id, now, reason)

    # ------------------------------------------------------------------ views
    def get(self, task_id: str) -> Task | None:
        return self.inspector.get(task_id)

    def where(self, task_id: str) -> Place | None:
        if not is_safe_task_id(task_id):
            return None
        where = self.inspector.where_is(task_id, None)
        return Place(where) if where else None

    def claim_of(self, task_id: str) -> ClaimView | None:
        if not is_safe_task_id(task_id):
            return None
        return next(iter(self._claim_views(lambda pn: pn.task_id == task_id)), None)

    def claims(self, worker_id: str | None = None) -> list[ClaimView]:
        return self._claim_views(lambda pn: worker_id is None or pn.worker_id == worker_id)

    def _claim_views(self, keep: Callable[[ProcessingName], bool]) -> list[ClaimView]:
        """processing/ names (owner, claim time, first lease) plus each kept file's mtime (heartbeats)."""
        out = []
        for name in os.listdir(self._p):
            pn = parse_processing_name(name)
            if pn is None or not keep(pn):
                continue
            try:
                expires = max(pn.first_expiry, os.stat(f"{self._p}/{name}").st_mtime)
            except FileNotFoundError:
                continue  # finished or reaped meanwhile
            out.append(ClaimView(pn.task_id, pn.worker_id, pn.claimed_at, expires, pn.instance))
        return out

    def ids_in(self, place: Place) -> list[str]:
        return place_ids.ids_in(self.paths, self.awaiting.ids() if place is Place.AWAITING else [], place)

    def restore(self, tasks: Sequence[Task], now: float) -> list[str]:
        return restore_batch(self, tasks, now)

    def forget_failed(self, task_id: str, now: float) -> Verdict:
        return forget.forget_failed(self, task_id, now)

    def failed_stamp(self) -> int | None:
        """failed/'s mtime: every file in or out of it changes it (one stat)."""
        try:
            return os.stat(self.paths.failed).st_mtime_ns
        except OSError:
            return None

    def counts(self) -> QueueCounts:
        return self.inspector.counts()

    def oldest_waiting(self, now: float, limit: int) -> list[WaitingTask]:
        return self.inspector.oldest_waiting(now, limit)

    def recent(self, state: str, limit: int) -> list[Task]:
        return self.inspector.recent(state, limit)
