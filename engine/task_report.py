"""One task as the operator asks about it: where it is, its attempts, and its output tail.

``galaxy task show`` and the dashboard's task detail read the same ``TaskReport``, so the
shell and the screen never disagree. While a task runs, its output tail is the live
progress its worker publishes in its status file (the llm handler streams the partial
answer there); once it ends, it is the tail kept in the task's result or error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from engine.model import OUTPUT_TAIL_CHARS, Attempt, Task, is_safe_task_id, iso, worker_at
from engine.queue.names import is_safe_worker_id
from engine.queue.protocol import Place, TaskQueue
from engine.textsafe import one_line, terminal_safe
from engine.workerstate import WorkerStatus, read_status

if TYPE_CHECKING:
    from engine.paths import RigPaths


class TaskState(StrEnum):
    """Where a task is, in the operator's words (``engine.queue`` directories underneath)."""

    HELD = "held"  # dependencies pending
    AWAITING = "awaiting_approval"  # an escalation waits for the operator
    DELAYED = "delayed"  # backoff before its next try
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


_FROM_WHERE = {Place.HELD: TaskState.HELD, Place.DELAYED: TaskState.DELAYED, Place.QUEUE: TaskState.QUEUED,
               Place.PROCESSING: TaskState.RUNNING, Place.AWAITING: TaskState.AWAITING,
               Place.COMPLETE: TaskState.COMPLETE, Place.FAILED: TaskState.FAILED}


@dataclass(frozen=True)
class TaskReport:
    task: Task
    state: TaskState
    worker_id: str | None
    started_at: float | None
    ended_at: float | None
    tokens_per_s: float | None
    output_tail: str
    output_live: bool  # the tail is the running task's partial output, from its worker
    rig: str | None = None  # the worker's rig, on a store several rigs share (worker names repeat)


    @property
    def duration_s(self) -> float | None:
        return None if self.started_at is None or self.ended_at is None else self.ended_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        t = self.task
        return {"task_id": t.task_id, "name": t.name, "state": self.state.value, "type": t.type.value,
                "task_class": t.task_class.value, "model": t.model, "priority": t.priority,
                "worker_id": self.worker_id, "rig": self.rig, "started_at": iso(self.started_at), "ended_at": iso(self.ended_at),
                "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
                "tokens_per_s": self.tokens_per_s, "retry_count": t.retry_count, "max_retries": t.max_retries,
                "error": t.error, "created_at": iso(t.created_at), "depends_on": list(t.depends_on),
                "plan": t.plan, "runs": what_it_runs(t),
                "attempts": [a.to_dict() for a in t.attempts], "output_tail": self.output_tail,
                "output_live": self.output_live}


MIN_OVERLAP = 32


def new_output(old: str, new: str) -> tuple[str, bool]:
    """What ``new`` (a later tail of the same output) adds after ``old``, and whether the two
    did not overlap (more output came between the looks than one tail holds, or it restarted).

    A tail is a sliding window, so the longest end of ``old`` that begins ``new`` is taken as
    seen; output that repeats itself exactly may be under-counted, never printed twice."""
    if not old or new.startswith(old):
        return new[len(old):], False
    for k in range(min(len(old), len(new)), MIN_OVERLAP - 1, -1):
        if old.endswith(new[:k]):
            return new[k:], False
    return new, True


def what_it_runs(task: Task) -> str:
    """The command, or the prompt (first line), in one line."""
    if task.command:
        return task.command
    prompt = task.params.get("prompt")
    return str(prompt).strip().splitlines()[0] if isinstance(prompt, str) and prompt.strip() else "-"


def finished_tail(task: Task) -> str:
    """The output a finished task left: the handler's tail, the answer, or the error."""
    result = task.result or {}
    for key in ("output_tail", "text", "output"):
        value = result.get(key)
        if isinstance(value, str) and value:
            return value[-OUTPUT_TAIL_CHARS:]
    if task.error:
        return task.error[-OUTPUT_TAIL_CHARS:]
    if result:
        return json.dumps(result, indent=1, default=str)[-OUTPUT_TAIL_CHARS:]
    return ""


def build_report(task: Task, state: TaskState, status: WorkerStatus | None) -> TaskReport:
    """A report from the task file and (for a running task) its worker's status."""
    last: Attempt | None = task.attempts[-1] if task.attempts else None
    running = state is TaskState.RUNNING
    worker = task.lease_owner if running else (last.worker_id if last else None)
    rig = last.rig if last is not None and not running else None
    started = last.started_at if last and (not running or last.outcome == "running") else None
    ended = last.ended_at if last and not running else None
    result = task.result or {}
    tps = result.get("tokens_per_s")
    tokens_per_s = float(tps) if isinstance(tps, (int, float)) and not isinstance(tps, bool) else None
    live = status is not None and status.current_task == task.task_id and state is TaskState.RUNNING
    if live:
        assert status is not None
        started = status.task_started_at or started
        tokens_per_s = status.tokens_per_s
        tail = (status.progress or "")[-OUTPUT_TAIL_CHARS:]
    elif state is TaskState.RUNNING:
        tail = ""
    else:
        tail = finished_tail(task)
    return TaskReport(task=task, state=state, worker_id=worker, started_at=started, ended_at=ended,
                      tokens_per_s=tokens_per_s, output_tail=tail, output_live=live, rig=rig)


def load_report(queue: TaskQueue, paths: RigPaths, task_id: str) -> TaskReport | None:
    """The task as the queue holds it now; None when no directory has it.

    Raises ValueError for an id that is not a safe file name (checked before any path is built).
    """
    if not is_safe_task_id(task_id):
        raise ValueError(f"not a valid task id: {task_id!r}")
    task = queue.get(task_id)
    if task is None:
        return None
    where = queue.where(task_id)
    state = _FROM_WHERE.get(where, TaskState.QUEUED) if where is not None else TaskState.QUEUED
    if state is TaskState.QUEUED and task.status.value == "processing":
        state = TaskState.RUNNING  # it moved between the two looks
    status = None
    owner = task.lease_owner
    claim = queue.claim_of(task_id) if state is TaskState.RUNNING else None
    if claim is not None:  # the claim (in the processing file's name) is the current, running attempt
        owner = owner or claim.worker_id
        task = task.with_changes(lease_owner=owner, attempts=task.attempts + (
            Attempt(number=len(task.attempts) + 1, worker_id=claim.worker_id, started_at=claim.claimed_at),))
    if state is TaskState.RUNNING and owner and is_safe_worker_id(owner):
        status = read_status(paths.worker_status(owner))
    return build_report(task, state, status)


def _clock(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{(s % 3600) // 60:02d}m"


def report_lines(r: TaskReport, now: float, *, with_tail: bool = True) -> list[str]:
    """Plain text for the shell (the dashboard renders the same fields with styles)."""
    t = r.task
    dur = r.duration_s if r.duration_s is not None else (now - r.started_at if r.started_at is not None
                                                         and r.state is TaskState.RUNNING else None)
    rows = [("task", t.task_id), ("name", terminal_safe(t.name)), ("state", r.state.value),
            ("class", f"{t.task_class.value} ({t.type.value})"), ("model", terminal_safe(t.model or "-")),
            ("priority", str(t.priority)), ("worker", worker_at(r.worker_id, r.rig)), ("runs", what_it_runs(t)),
            ("created", _clock(t.created_at)), ("started", _clock(r.started_at)), ("ended", _clock(r.ended_at)),
            ("duration", _dur(dur)),
            ("tokens/s", "-" if r.tokens_per_s is None else f"{r.tokens_per_s:.1f}"),
            ("retries", f"{t.retry_count} of {t.max_retries}"), ("depends on", ", ".join(t.depends_on) or "-"),
            ("plan", terminal_safe(t.plan or "-")), ("error", one_line(t.error) or "-")]
    out = [f"{k:>10}  {v}" for k, v in rows]
    out.append("attempts:")
    for a in t.attempts:
        rc = f" rc={a.return_code}" if a.return_code is not None else ""
        err = f"  {one_line(a.error)}" if a.error else ""
        out.append(f"  #{a.number} {worker_at(a.worker_id, a.rig)} {_clock(a.started_at)} {a.outcome}{rc}{err}")
    if not t.attempts:
        out.append("  none yet")
    if not with_tail:
        return out
    out.append("output tail (live):" if r.output_live else "output tail:")
    tail = terminal_safe(r.output_tail)
    out.extend(("  " + line for line in tail.splitlines()) if tail else ["  -"])
    return out
