"""``RedisQueue.restore``: tasks moved from another store, each put where its record says
(engine/queue/restoring.py) by one script, all or none (``RESTORE`` in lua.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.event_types import EventType
from engine.model import Task, TaskStatus, TaskValidationError
from engine.queue.protocol import Place
from engine.queue.restoring import batch_problems, restore_place
from engine.store.redis import codec
from engine.store.redis.codec import new_request_id

if TYPE_CHECKING:
    from engine.store.redis.queue import RedisQueue


def restore_batch(q: RedisQueue, tasks: Sequence[Task], now: float) -> list[str]:
    problems = batch_problems(tasks, lambda _id: None)  # what the script cannot see; it checks known ids
    if problems:
        raise TaskValidationError("; ".join(problems))
    if not tasks:
        return []
    places = {t.task_id: restore_place(t, now) for t in tasks}
    meta = [_meta(t, places[t.task_id]) for t in tasks]
    encoded = [codec.encode_task(_definition(t)) for t in tasks]
    reply = q.run("restore", now, [json.dumps(meta), *encoded], request_id=new_request_id())
    if not reply.get("ok"):
        raise TaskValidationError("; ".join(str(p) for p in reply.get("problems") or []))
    states = reply.get("states") or {}
    for t in tasks:
        place = states.get(t.task_id, places[t.task_id].value)  # a replayed reply names none: as planned
        q.events.emit(EventType.TASK_MIGRATED, at=now, task_id=t.task_id, task_class=t.task_class.value,
                      model=t.model, place=str(place))
    return [t.task_id for t in tasks]


def _meta(t: Task, place: Place) -> dict[str, object]:
    return {"id": t.task_id, "cls": t.task_class.value, "lane": codec.lane_key(t), "maxr": t.max_retries,
            "retry": t.retry_count, "deps": list(t.depends_on), "att": [json.dumps(a.to_dict()) for a in t.attempts],
            "st": place.value, "due": str(codec.us(t.not_before)) if place is Place.DELAYED and t.not_before else "",
            "err": t.error or "", "res": json.dumps(t.result) if t.result is not None else ""}


def _definition(t: Task) -> Task:
    """The task JSON kept under ``j``: its definition; state, error, result and attempts live in the hash."""
    return t.with_changes(status=TaskStatus.PENDING, lease_owner=None, lease_expires=None, result=None,
                          attempts=(), error=None, not_before=None)
