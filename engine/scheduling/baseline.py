"""The field notes' claim order, kept as the benchmark's baseline (not used by workers).

From section 2.3 of the notes: workers claim by task class preference (resource >
preferred class > others), then priority (higher first), then file order; the worker
loads whatever the task needs. No aging, no residency, no look-ahead.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.model import TaskClass
from engine.queue.protocol import Candidate, ClaimPolicy
from engine.scheduling.policy import WorkerProfile, _fits


def notes_rank(candidates: Sequence[Candidate], worker: WorkerProfile) -> list[Candidate]:
    def key(c: Candidate) -> tuple[int, int, int, float]:
        is_resource = 0 if c.task_class is TaskClass.RESOURCE else 1
        pref = 0 if c.task_class in worker.preferred_classes else 1
        return (is_resource, pref, -c.priority, c.created_at)

    return sorted((c for c in candidates if _fits(c, worker)), key=key)


def make_notes_policy(worker: WorkerProfile) -> ClaimPolicy:
    def policy(candidates: Sequence[Candidate], now: float) -> Sequence[Candidate]:
        return notes_rank(candidates, worker)

    return policy
