"""The worker loop: obey control, keep the queue tidy, claim, prepare the card, run, record.

One worker per GPU group (its own process, CUDA_VISIBLE_DEVICES set before Python
started). Between tasks it waits on inotify (no busy loop); while a task runs a side
thread keeps the lease. Stopping (SIGTERM, drain) never loses a task: the running one
finishes within ``stop_grace_s`` or is handed back with ``release`` (no retry charged).
While the store does not answer (``StoreUnavailable``) the worker keeps a finished task's
result and records it once the store answers again, and claims nothing meanwhile
(engine/store/outage.py: the retry policy, and one log line per change, not per try).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.clock import Clock
from engine.event_types import EventType
from engine.events import EventLog
from engine.handlers.base import HandlerResult, TaskContext, TaskFailure
from engine.handlers.registry import HandlerRegistry
from engine.model import ERROR_SNIPPET_CHARS, Task, TaskClass
from engine.paths import RigPaths
from engine.proctable import current_instance
from engine.queue.protocol import ClaimPolicy, EscalationRule, RigQueue, StoreUnavailable
from engine.residency.protocol import Residency
from engine.scheduling.policy import RigView, WorkerProfile, make_claim_policy
from engine.store.outage import Change, RetryPolicy, StoreOutage, clock_text, describe
from engine.taskgroups import TaskGroupRecord, TaskGroups
from engine.worker.heartbeat import LeaseKeeper
from engine.worker.outage import PendingRecord
from engine.worker.status import StatusPublisher
from engine.workerstate import ControlMode, WorkerActivity, WorkerControl, WorkerStatus, read_control

PROGRESS_PUBLISH_S = 0.5


@dataclass
class WorkerSettings:
    lease_s: float = 60.0
    heartbeat_s: float | None = None  # default: lease_s / 3, at most status_every_s (a cancel is seen within it)
    housekeeping_s: float = 5.0  # promote due retries, reap stale leases
    status_every_s: float = 2.0  # status heartbeat, busy or idle (the supervisor's silent alert reads it)
    idle_wait_s: float = 30.0  # longest sleep with inotify (an event wakes it sooner)
    poll_s: float = 1.0  # longest sleep without inotify (NFS)
    stop_grace_s: float = 30.0
    workdir: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    max_tasks: int | None = None  # stop after this many (tests, one-shot runs)
    exit_when_idle: bool = False  # stop when nothing is claimable (tests, benchmarks)


class Worker:
    def __init__(self, queue: RigQueue, handlers: HandlerRegistry, residency: Residency, clock: Clock,
                 paths: RigPaths, events: EventLog, worker_id: str, gpu_ids: tuple[int, ...],
                 profile: WorkerProfile | None = None, settings: WorkerSettings | None = None, *,
                 rig_view: Callable[[], RigView] | None = None, groups: TaskGroups | None = None,
                 outage: StoreOutage | None = None, escalate: EscalationRule | None = None) -> None:
        self.queue = queue
        self.escalate = escalate  # a task that qualifies waits for an operator from its failure on
        self.handlers = handlers
        self.residency = residency
        self.clock = clock
        self.paths = paths
        self.events = events
        self.worker_id = worker_id
        self.gpu_ids = tuple(gpu_ids)
        self.profile = profile or WorkerProfile(worker_id)
        self.settings = settings or WorkerSettings()
        self.rig_view = rig_view or (lambda: RigView())
        self.groups = groups if groups is not None else TaskGroups(paths)
        self.instance = current_instance(self.groups.procs)  # this process, as its claims name it
        self.env = dict(os.environ)
        self.env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in self.gpu_ids)
        self.tasks_done = 0
        self.tasks_failed = 0
        self.outage = outage or StoreOutage(RetryPolicy(base_s=0.5, cap_s=5.0))  # soon after it answers again
        self._pending: PendingRecord | None = None  # a finished task's outcome the store has not taken yet
        self.log = logging.getLogger(f"galaxy.worker.{worker_id}")
        self._stop_reason: str | None = None
        self._stop_deadline = float("inf")
        self._state = WorkerActivity.IDLE
        self._current: Task | None = None
        self._task_started: float | None = None
        self._progress: str | None = None
        self._tps: float | None = None
        self._control = WorkerControl(seq=0)
        self._control_mtime: tuple[int, int, int] | None = None
        self._unload_seq_done: int | None = None  # None until the first control file is read
        self._last_status = 0.0
        self._last_housekeeping = float("-inf")
        self._status_lock = threading.Lock()
        self._publisher: StatusPublisher | None = None
        self._last_progress_publish = float("-inf")
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        # its own control file only: peers' status writes must not wake it
        queue.watch(paths.workers, frozenset({paths.worker_control(worker_id).name}))

    # ------------------------------------------------------------------ control
    def request_stop(self, reason: str, *, immediate: bool = False) -> None:
        """Safe from a signal handler: set flags and poke the wait pipe."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self._stop_deadline = time.monotonic() + self.settings.stop_grace_s
        if immediate:
            self._stop_deadline = time.monotonic()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    def _read_control(self) -> WorkerControl:
        path = self.paths.worker_control(self.worker_id)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return self._control
        mtime = (st.st_ino, st.st_mtime_ns, st.st_size)  # written by rename: a new inode every time
        if mtime != self._control_mtime:
            ctl = read_control(path)
            self._control_mtime = mtime  # read once per change: a bad file is reported once, not every step
            if ctl is not None:
                self._apply_control(ctl)
            else:
                self.events.emit(EventType.WORKER_ERROR, at=self.clock.now(), worker_id=self.worker_id,
                                 error=f"{path.name}: not a valid control file; keeping the last one")
        return self._control

    def _apply_control(self, ctl: WorkerControl) -> None:
        old = self._control
        self._control = ctl
        if self._unload_seq_done is None:
            # The control file outlives worker processes: an unload asked of an earlier process of
            # this worker is done; replaying it would empty the group's server on every restart.
            self._unload_seq_done = ctl.unload_seq
        elif ctl.unload_seq > self._unload_seq_done:
            self._unload_seq_done = ctl.unload_seq
            model = self.residency.resident_model
            self.residency.force_unload()
            self.events.emit(EventType.MODEL_UNLOADED, at=self.clock.now(), worker_id=self.worker_id, model=model,
                             reason=ctl.reason or "operator force-unload")
        if ctl.mode != old.mode or ctl.thermal_hold != old.thermal_hold:
            kind = {ControlMode.PAUSE: EventType.WORKER_PAUSED,
                    ControlMode.DRAIN: EventType.WORKER_DRAINING}.get(ctl.mode, EventType.WORKER_RESUMED)
            self.events.emit(kind, at=self.clock.now(), worker_id=self.worker_id, reason=ctl.reason,
                             thermal_hold=ctl.thermal_hold or None)
        self._write_status(force=True)

    # ------------------------------------------------------------------ status
    def _status(self, now: float) -> WorkerStatus:
        t = self._current
        return WorkerStatus(
            worker_id=self.worker_id, pid=os.getpid(), gpus=self.gpu_ids, state=self._state, heartbeat_at=now,
            current_task=t.task_id if t else None, task_name=t.name if t else None,
            task_class=t.task_class.value if t else None, task_started_at=self._task_started if t else None,
            progress=self._progress if t else None, tokens_per_s=self._tps if t else None,
            residency=self.residency.state, resident_model=self.residency.resident_model,
            control_seq=self._control.seq, tasks_done=self.tasks_done, tasks_failed=self.tasks_failed,
            gpu_degraded=self._degraded())

    def _degraded(self) -> str | None:
        """The residency's degraded reason (``ResidencyManager.degraded``); other residencies have none."""
        try:
            value = getattr(self.residency, "degraded", None)
        except Exception:  # noqa: BLE001 - a status write must never fail on this
            return None
        return str(value) if value else None

    def _write_status(self, *, force: bool = False) -> None:
        now = self.clock.now()
        if not force and now - self._last_status < self.settings.status_every_s:
            return
        with self._status_lock:
            self._last_status = now
            status = self._status(now)
        if self._publisher is not None:
            self._publisher.publish(status)

    def _set_state(self, state: WorkerActivity) -> None:
        if state != self._state:
            self._state = state
            self._write_status(force=True)

    # ------------------------------------------------------------------ loop
    def run(self) -> int:
        """Run until stopped (signal, drain, max_tasks, or idle with exit_when_idle). Returns tasks run."""
        self.paths.workers.mkdir(parents=True, exist_ok=True)
        self._publisher = StatusPublisher(self.paths.worker_status(self.worker_id))
        self.events.emit(EventType.WORKER_STARTED, at=self.clock.now(), worker_id=self.worker_id,
                         gpu_id=self.gpu_ids[0] if self.gpu_ids else None, gpus=list(self.gpu_ids), pid=os.getpid())
        ran = 0
        try:
            while not self.stopping:
                if self.settings.max_tasks is not None and ran >= self.settings.max_tasks and self._pending is None:
                    break
                try:
                    step = self._step()
                except StoreUnavailable as exc:  # claims pause; the next step waits out the retry delay
                    self._store_failed(exc)
                    continue
                except Exception as exc:  # noqa: BLE001 - disk full, NFS hiccup, one bad item: report, wait, go on
                    self.events.emit(EventType.WORKER_ERROR, at=self.clock.now(), worker_id=self.worker_id,
                                     error=f"{type(exc).__name__}: {exc}")
                    self._wait(self.settings.poll_s)
                    continue
                if step == "ran":
                    ran += 1
                elif step == "stop":
                    break
            self._flush_pending()
        finally:
            self._state = WorkerActivity.STOPPING
            publisher, self._publisher = self._publisher, None
            if publisher is not None:
                publisher.close(self._status(self.clock.now()))
            self.events.emit(EventType.WORKER_STOPPED, at=self.clock.now(), worker_id=self.worker_id,
                             reason=self._stop_reason or "finished", tasks_done=self.tasks_done)
        return ran

    def _step(self) -> str:
        """One turn of the loop: "ran" a task, "waited", or "stop"."""
        ctl = self._read_control()
        if ctl.mode == ControlMode.DRAIN:
            self.request_stop("drain")
            return "stop"
        if self._pending is not None:
            return self._record_pending()
        if ctl.mode == ControlMode.PAUSE or ctl.thermal_hold:
            self._set_state(WorkerActivity.HOT if ctl.thermal_hold else WorkerActivity.PAUSED)
            self._wait(self.settings.status_every_s)
            self._write_status()
            return "waited"
        if not self.outage.due(self.clock.now()):
            return self._wait_for_store()
        self._housekeeping()
        if self.run_one():
            return "ran"
        if self.settings.exit_when_idle:
            return "stop"
        self._set_state(WorkerActivity.IDLE)
        self._write_status()
        self._wait(self._idle_timeout())
        return "waited"

    def _idle_timeout(self) -> float:
        timeout = self.settings.idle_wait_s if self.queue.wakes_on_change() else self.settings.poll_s
        timeout = min(timeout, self.settings.housekeeping_s, self.settings.status_every_s)
        due = self.queue.next_due()
        if due is not None:
            timeout = min(timeout, max(0.0, due - self.clock.now()))
        return timeout

    def _wait(self, timeout_s: float) -> None:
        self.queue.wait_for_change(timeout_s, wake_fd=self._wake_r)
        try:
            while os.read(self._wake_r, 64):
                pass
        except BlockingIOError:
            pass
        except OSError:
            pass

    def _housekeeping(self) -> None:
        now = self.clock.now()
        if now - self._last_housekeeping < self.settings.housekeeping_s:
            return
        self._last_housekeeping = now
        self.queue.promote_due(now)
        self.queue.reap_stale(now)

    def _policy(self) -> ClaimPolicy:
        profile = replace(self.profile, resident_model=self.residency.resident_model)
        return make_claim_policy(profile, self.rig_view())

    # ------------------------------------------------------------------ one task
    def run_one(self) -> bool:
        """Claim and run one task. False when nothing was claimable."""
        now = self.clock.now()
        task = self.queue.claim(self.worker_id, now, self._policy(), self.settings.lease_s)
        self._store_answered()
        if task is None:
            return False
        self._execute(task)
        return True

    def _execute(self, task: Task) -> None:
        s = self.settings
        self._current, self._task_started, self._progress, self._tps = task, self.clock.now(), None, None
        self._set_state(WorkerActivity.BUSY)
        beat_s = s.heartbeat_s or max(0.05, min(s.lease_s / 3.0, s.status_every_s))
        keeper = LeaseKeeper(self.queue, self.clock, task.task_id, self.worker_id, s.lease_s, beat_s,
                             on_beat=lambda: self._write_status(force=True), status_every_s=s.status_every_s,
                             on_store=self._store_seen)

        def should_stop() -> bool:
            return keeper.lost or time.monotonic() >= self._stop_deadline

        def report(text: str | None, tps: float | None) -> None:
            self._progress, self._tps = text, tps
            if time.monotonic() - self._last_progress_publish >= PROGRESS_PUBLISH_S:
                self._last_progress_publish = time.monotonic()
                self._write_status(force=True)  # live output on the dashboard, at most a few times a second

        recorded: list[TaskGroupRecord] = []

        def on_process_group(pgid: int, out_path: str) -> None:
            rec = TaskGroupRecord(task.task_id, self.worker_id, self.instance, pgid,
                                  self.groups.procs.start_ticks(pgid), out_path)
            self.groups.record(rec)  # before the command runs: a dead worker's task is killed by others
            recorded.append(rec)

        ctx = TaskContext(worker_id=self.worker_id, gpu_ids=self.gpu_ids, env=dict(self.env),
                          workdir=s.workdir or os.getcwd(), deadline=self._task_started + task.timeout_s,
                          report_progress=report, should_stop=should_stop, extras=dict(s.extras),
                          on_process_group=on_process_group)
        self.events.emit(EventType.TASK_STARTED, at=self._task_started, task_id=task.task_id, worker_id=self.worker_id,
                         gpu_id=self.gpu_ids[0] if self.gpu_ids else None, task_class=task.task_class.value)
        outcome: HandlerResult | TaskFailure
        with keeper:
            try:
                self.residency.prepare(task, ctx)
                outcome = self.handlers.get(task.type).run(task, ctx)
            except TaskFailure as exc:
                outcome = exc
            except Exception as exc:  # noqa: BLE001 - a handler bug fails the task, never the worker
                outcome = TaskFailure(f"{type(exc).__name__}: {exc}", retryable=True)
            finally:
                self._end_groups(recorded)
        ok = isinstance(outcome, HandlerResult)
        try:
            self.residency.finished(task, ok)
        except Exception as exc:  # noqa: BLE001 - the task's result still counts; the residency trouble is reported
            self.events.emit(EventType.WORKER_ERROR, at=self.clock.now(), task_id=task.task_id, worker_id=self.worker_id,
                             error=f"residency after task: {type(exc).__name__}: {exc}")
        stopped = not keeper.lost and time.monotonic() >= self._stop_deadline
        finished_at = self.clock.now()
        try:
            self._record(task, outcome, stopped=stopped, now=finished_at)
            self._store_answered()
        except StoreUnavailable as exc:  # keep the outcome; recorded (once: owner token) when the store answers
            self._pending = PendingRecord(task, outcome, stopped, finished_at)
            self._store_failed(exc)
        finally:  # a record that fails (disk full) is reported by run(); the status must not stay on this task
            self._current = None
            self._set_state(WorkerActivity.IDLE)

    def _end_groups(self, recorded: list[TaskGroupRecord]) -> None:
        """The task is over: nothing of it may outlive this point (and its record goes)."""
        for rec in recorded:
            try:
                self.groups.kill(rec)
            except OSError as exc:
                self.events.emit(EventType.WORKER_ERROR, at=self.clock.now(), task_id=rec.task_id, worker_id=self.worker_id,
                                 error=f"ending the task's process group {rec.pgid}: {exc}")

    def _record(self, task: Task, outcome: HandlerResult | TaskFailure, *, stopped: bool, now: float) -> None:
        elapsed = now - (self._task_started or now)
        if isinstance(outcome, HandlerResult):
            result = dict(outcome.result)
            result.setdefault("elapsed_s", round(elapsed, 3))
            for key in ("tokens_generated", "tokens_per_s", "model"):
                value = getattr(outcome, key)
                if value is not None:
                    result.setdefault(key, value)
            self.queue.complete(task.task_id, self.worker_id, result, now)
            self.tasks_done += 1
        elif stopped:
            self.queue.release(task.task_id, self.worker_id, now, f"worker stopping ({self._stop_reason})")
        else:
            error = str(outcome)
            if outcome.output_tail and outcome.output_tail[-ERROR_SNIPPET_CHARS:] not in error:
                error = f"{error} | {outcome.output_tail[-ERROR_SNIPPET_CHARS:]}"
            self.queue.fail(task.task_id, self.worker_id, error, now, retryable=outcome.retryable,
                            return_code=outcome.return_code, escalate=self.escalate)
            self.tasks_failed += 1

    # ------------------------------------------------------------------ store outages
    def _record_pending(self) -> str:
        """Try again to record the kept outcome (when the retry is due); the same claim, so once."""
        pending = self._pending
        if pending is None or not self.outage.due(self.clock.now()):
            return self._wait_for_store()
        self._record(pending.task, pending.outcome, stopped=pending.stopped, now=pending.finished_at)
        self._pending = None  # raised StoreUnavailable above: still pending, run() notes the failure
        self._store_answered()
        return "waited"

    def _wait_for_store(self) -> str:
        self._wait(min(self.outage.wait_s(self.clock.now()), self.settings.status_every_s))
        self._write_status()
        return "waited"

    def _flush_pending(self) -> None:
        """Stopping with an outcome not recorded: keep trying within the stop grace, then say so (the
        claim's lease ends and the task runs again; nothing is recorded twice)."""
        deadline = self._stop_deadline
        if deadline == float("inf"):
            deadline = time.monotonic() + self.settings.stop_grace_s
        while self._pending is not None:
            if time.monotonic() >= deadline:
                task_id = self._pending.task.task_id
                since = clock_text(self.outage.since or self.clock.now())
                msg = (f"result of {task_id} not recorded: store unreachable since {since}; "
                       "its lease ends and it runs again")
                self.log.error(msg)
                self.events.emit(EventType.WORKER_ERROR, at=self.clock.now(), task_id=task_id,
                                 worker_id=self.worker_id, error=msg)
                self._pending = None
                return
            try:
                self._record_pending()
            except StoreUnavailable as exc:
                self._store_failed(exc)

    def _store_seen(self, error: StoreUnavailable | None) -> None:
        """The lease thread's report: a heartbeat that found the store away, or answered."""
        if error is None:
            self._store_answered()
        else:
            self._store_failed(error)

    def _store_failed(self, exc: OSError) -> None:
        change = self.outage.failed(self.clock.now(), f"{type(exc).__name__}: {exc}")
        if change is not None:
            self._announce(change)

    def _store_answered(self) -> None:
        if self.outage.down:
            change = self.outage.answered(self.clock.now())
            if change is not None:
                self._announce(change)

    def _announce(self, change: Change) -> None:
        """One log line and one event per change (the event may be lost while the store is away)."""
        now = self.clock.now()
        text = describe(change, now, effect="; a finished task's result is kept, claims wait")
        if change.down:
            self.log.warning(text)
            self.events.emit(EventType.STORE_UNREACHABLE, at=now, worker_id=self.worker_id, error=change.error,
                             since=change.since)
        else:
            self.log.info(text)
            self.events.emit(EventType.STORE_RECOVERED, at=now, worker_id=self.worker_id, since=change.since,
                             failures=change.failures, down_s=round(now - change.since, 3))


def classes_from_text(text: str | None) -> tuple[TaskClass, ...]:
    if not text:
        return ()
    out = []
    for part in text.split(","):
        part = part.strip()
        if part:
            out.append(TaskClass(part))
    return tuple(out)


def default_workdir(paths: RigPaths) -> str:
    return str(Path(paths.root).parent)
