"""Tasks parked on the Redis store while their escalation awaits an operator (AwaitingStore).

Every move is one script run through the queue (``RedisQueue.run``), so this class only shapes
requests and answers; the queue stays the one object that writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.event_types import EventType
from engine.model import Task, TaskStatus, is_safe_task_id
from engine.queue.protocol import DONE, Refusal, Verdict
from engine.store.redis.codec import new_request_id
from engine.store.redis.unavailable import store_call

if TYPE_CHECKING:
    from engine.store.redis.queue import RedisQueue


class RedisAwaiting:
    """Tasks parked while their escalation awaits an operator (engine.queue.protocol.AwaitingStore)."""

    def __init__(self, q: RedisQueue) -> None:
        self.q = q

    def park(self, task_id: str, escalation_id: str, now: float) -> Verdict:
        if not is_safe_task_id(task_id):
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        reply = self.q.run("park", now, [task_id, escalation_id], request_id=new_request_id())
        if not reply.get("ok"):
            return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not in failed/")
        if not reply.get("already"):
            self.q.events.emit(EventType.TASK_AWAITING_APPROVAL, at=now, task_id=task_id, escalation_id=escalation_id)
        return DONE

    def attach(self, task_id: str, escalation_id: str, now: float) -> Verdict:
        if not is_safe_task_id(task_id):
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        reply = self.q.run("attach", now, [task_id, escalation_id], request_id=new_request_id())
        if reply.get("ok"):
            return DONE
        if reply.get("esc"):
            return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} awaits escalation {reply['esc']} already")
        return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not awaiting approval")

    @store_call
    def get(self, task_id: str) -> Task | None:
        task = self.q.get(task_id) if is_safe_task_id(task_id) else None
        return task if task is not None and task.status is TaskStatus.AWAITING_APPROVAL else None

    @store_call
    def ids(self) -> list[str]:
        return [str(i) for i in self.q.r.zrange(self.q.key("awaiting"), 0, -1)]

    @store_call
    def tasks(self) -> list[Task]:
        return [t for t in (self.get(i) for i in self.ids()) if t is not None]

    @store_call
    def counts(self) -> dict[str, int]:
        raw = self.q.r.hgetall(self.q.key("n:awaiting"))
        return {str(k): int(v) for k, v in raw.items() if int(v) > 0}

    @store_call
    def refusal(self, task_id: str) -> str | None:
        if not is_safe_task_id(task_id):
            return None
        st, esc = self.q.r.hmget(self.q.key(f"t:{task_id}"), ["st", "esc"])
        if st != "awaiting":
            return None
        which = f"escalation {esc!s}" if esc else "its escalation"
        return f"{task_id} is awaiting approval of {which}; approve or deny it first"

    def resolve(self, task_id: str, result: dict[str, Any], now: float, note: str = "escalation") -> Verdict:
        if self.refusal(task_id) is None:
            return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not awaiting approval")
        return self.q.resolve_failed(task_id, result, now, note)

    def fail(self, task_id: str, reason: str, now: float,
             event: EventType = EventType.TASK_ESCALATION_DENIED) -> Verdict:
        if not is_safe_task_id(task_id):
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        reply = self.q.run("unpark", now, [task_id, "fail", reason], request_id=new_request_id())
        if not reply.get("ok"):
            return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not awaiting approval")
        self.q.events.emit(event, at=now, task_id=task_id, error=reason)
        return DONE

    def retry_local(self, task_id: str, now: float) -> Verdict:
        if not is_safe_task_id(task_id):
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        reply = self.q.run("unpark", now, [task_id, "local", ""], request_id=new_request_id())
        if not reply.get("ok"):
            return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not awaiting approval")
        self.q.events.emit(EventType.TASK_RETRIED, at=now, task_id=task_id)
        return DONE

    def recover(self, now: float) -> list[str]:
        """Nothing to finish: every move is one script, never cut short."""
        return []
