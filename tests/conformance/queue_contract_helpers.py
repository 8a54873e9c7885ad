"""Tasks, claim policies and steps the queue contract suites share (not a test module)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.model import Task, TaskClass
from engine.queue.protocol import Candidate, ClaimPolicy, RigQueue
from engine.scheduling.policy import WorkerProfile, make_claim_policy

OpenQueue = Callable[[], RigQueue]  # the ``queue_factory`` fixture: another handle on the same store
LEASE_S = 30.0


def task(task_id: str, **kw: object) -> Task:
    kw.setdefault("name", task_id)
    kw.setdefault("command", "true")
    kw.setdefault("task_class", TaskClass.CPU)
    return Task(task_id=task_id, **kw)  # type: ignore[arg-type]


def policy(worker_id: str = "w1") -> ClaimPolicy:
    return make_claim_policy(WorkerProfile(worker_id))


class Recording:
    """A claim policy that takes the first candidate by id, remembering every offer."""

    def __init__(self, pick: str | None = None) -> None:
        self.pick = pick
        self.offers: list[list[Candidate]] = []

    def __call__(self, candidates: Sequence[Candidate], now: float) -> Sequence[Candidate]:
        self.offers.append(list(candidates))
        chosen = [c for c in candidates if self.pick is None or c.task_id == self.pick]
        return sorted(chosen, key=lambda c: c.task_id)[:1]


def claim(q: RigQueue, now: float, worker_id: str = "w1", lease_s: float = LEASE_S) -> Task:
    t = q.claim(worker_id, now, policy(worker_id), lease_s)
    assert t is not None, "expected a claimable task"
    return t


def drain(q: RigQueue, now: float, worker_id: str = "w1") -> list[str]:
    out = []
    while (t := q.claim(worker_id, now, policy(worker_id), LEASE_S)) is not None:
        out.append(t.task_id)
        q.complete(t.task_id, worker_id, {"ok": True}, now)
    return out


def fail_for_good(q: RigQueue, task_id: str, now: float, error: str = "boom") -> None:
    t = claim(q, now)
    assert t.task_id == task_id
    q.fail(task_id, "w1", error, now, retryable=False)
