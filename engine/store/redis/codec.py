"""Task records in Redis: lane keys (what a claim must match, known without reading a task) and the
task hash read back into a validated ``Task`` (``Task.from_dict``: a record someone else wrote is
checked like a task file)."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from urllib.parse import quote, unquote

from engine.model import Executor, Task, TaskClass, TaskStatus, TaskType, TaskValidationError
from engine.queue.names import needs_token, parse_needs, task_needs
from engine.queue.protocol import Candidate, Place

LANE_SEP = "|"

STATUS_OF = {
    "queue": TaskStatus.PENDING, "delayed": TaskStatus.PENDING, "held": TaskStatus.HELD,
    "processing": TaskStatus.PROCESSING, "complete": TaskStatus.COMPLETE, "failed": TaskStatus.FAILED,
    "awaiting": TaskStatus.AWAITING_APPROVAL,
}
PLACE_OF = {"queue": Place.QUEUE, "delayed": Place.DELAYED, "held": Place.HELD, "processing": Place.PROCESSING,
            "complete": Place.COMPLETE, "failed": Place.FAILED, "awaiting": Place.AWAITING}


def lane_key(task: Task) -> str:
    """class|model|priority|needs[|rig]: one lane per kind of work a claim must match (as the file
    queue's index groups names), and per rig a task is pinned to, so a head pinned to one rig never
    hides the lane's other tasks from the others; ``|`` never occurs in a class, a percent-quoted
    model, a needs token or a rig name."""
    kind, executor = task_needs(task)
    parts = [task.task_class.value, quote(task.model or "", safe=""), str(task.priority), needs_token(kind, executor)]
    return LANE_SEP.join(parts + ([task.rig] if task.rig is not None else []))


@functools.lru_cache(maxsize=4096)
def parse_lane(lane: str) -> tuple[TaskClass, str | None, int, TaskType | None, Executor]:
    """(Cached: a claim parses every lane head it offers, and lanes are few and never change meaning.)"""
    cls, model_q, prio, needs = lane.split(LANE_SEP)[:4]
    kind, executor = parse_needs(needs) if needs else (None, Executor.WORKER)
    return TaskClass(cls), unquote(model_q) or None, int(prio), kind, executor


@functools.lru_cache(maxsize=4096)
def lane_rig(lane: str) -> str | None:
    """The rig a lane's tasks are pinned to (None: any rig's workers)."""
    parts = lane.split(LANE_SEP)
    return parts[4] if len(parts) > 4 and parts[4] else None


@functools.lru_cache(maxsize=4096)
def candidate(lane: str, task_id: str, enqueued_us: float, depth: int) -> Candidate:
    """(Cached: a claim offers every lane's head, and most heads are the same as at the last claim; a
    Candidate is frozen, and building one costs ~10 us, as much as the policy's look at it.)"""
    cls, model, prio, kind, executor = parse_lane(lane)
    return Candidate(task_id, cls, model, prio, enqueued_us / 1e6, depth, kind=kind, executor=executor,
                     rig=lane_rig(lane))


def encode_task(task: Task) -> str:
    return json.dumps(task.to_dict(), separators=(",", ":"))


def us(t: float) -> int:
    return round(t * 1_000_000)


def decode_task(task_id: str, fields: Mapping[str, str], attempts: Sequence[str], *, where: str) -> Task:
    """The task as stored now: its definition (``j``) with the fields transitions change."""
    raw = fields.get("j")
    if raw is None:
        raise TaskValidationError("the task record has no task JSON", where=where)
    try:
        d = json.loads(raw)
        if not isinstance(d, dict):
            raise TaskValidationError("the task record is not a JSON object", where=where)
        st = fields.get("st", "")
        d["status"] = STATUS_OF.get(st, TaskStatus.PENDING).value
        d["retry_count"] = int(fields.get("retry", "0"))
        d["error"] = fields.get("err") or None
        res = json.loads(fields["res"]) if fields.get("res") else None
        if st == "awaiting":
            res = {**(res or {}), "awaiting_escalation": fields.get("esc", "")}
        d["result"] = res
        d["attempts"] = [json.loads(a) for a in attempts]
        d["lease_owner"] = fields.get("own") or None if st == "processing" else None
        d["lease_expires"] = int(fields["exp"]) / 1e6 if st == "processing" and fields.get("exp") else None
        d["not_before"] = int(fields["due"]) / 1e6 if st == "delayed" and fields.get("due") else None
    except (ValueError, TypeError, KeyError) as exc:
        raise TaskValidationError(f"the task record is damaged: {exc}", where=where) from exc
    task = Task.from_dict(d, where=where, autofix=False)
    if task.task_id != task_id:
        raise TaskValidationError(f"task_id {task.task_id!r} does not match its key", field="task_id", where=where)
    return task


def new_request_id() -> str:
    """A request id: a resent script with the same id applies once."""
    return uuid.uuid4().hex
