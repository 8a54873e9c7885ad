"""Claim policy: which waiting task a worker should take next. Pure functions of
(candidates, worker profile, rig view, now): the worker, the supervisor's "why does this
wait" explanation and the discrete-event simulator all call this same code.

Base order (issue 2): resource tasks first, then the worker's preferred classes, then
effective priority (priority plus aging), then age. Aging: a task gains one priority
level per ``aging_step_s`` waited, capped at 10, so a priority-1 task waiting
9 x aging_step_s competes with fresh priority-10 work (see docs/plan-format.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from engine.model import TaskClass
from engine.queue.protocol import Candidate, ClaimPolicy

DEFAULT_AGING_STEP_S = 300.0


@dataclass(frozen=True)
class WorkerProfile:
    worker_id: str
    preferred_classes: tuple[TaskClass, ...] = ()
    allowed_classes: tuple[TaskClass, ...] = tuple(TaskClass)
    resident_model: str | None = None  # what is warm on this worker's GPU(s) now
    resident_class: TaskClass | None = None


@dataclass(frozen=True)
class RigView:
    """What the worker knows of the rest of the rig (from the supervisor's snapshot)."""

    warm_elsewhere: dict[str, int] = field(default_factory=dict)  # model -> idle workers holding it warm


def effective_priority(c: Candidate, now: float, aging_step_s: float = DEFAULT_AGING_STEP_S) -> float:
    waited = max(0.0, now - c.created_at)
    return min(10.0, c.priority + waited / aging_step_s)


def rank(candidates: Sequence[Candidate], worker: WorkerProfile, rig: RigView, now: float,
         aging_step_s: float = DEFAULT_AGING_STEP_S) -> list[Candidate]:
    allowed = set(worker.allowed_classes)
    pool = [c for c in candidates if c.task_class in allowed]

    def key(c: Candidate) -> tuple[int, int, float, float]:
        is_resource = 0 if c.task_class is TaskClass.RESOURCE else 1
        pref = 0 if c.task_class in worker.preferred_classes else 1
        return (is_resource, pref, -effective_priority(c, now, aging_step_s), c.created_at)

    return sorted(pool, key=key)


def make_claim_policy(worker: WorkerProfile, rig: RigView | None = None,
                      aging_step_s: float = DEFAULT_AGING_STEP_S) -> ClaimPolicy:
    rig = rig or RigView()

    def policy(candidates: Sequence[Candidate], now: float) -> Sequence[Candidate]:
        return rank(candidates, worker, rig, now, aging_step_s)

    return policy
