"""What a worker keeps while its store does not answer: the outcome of the task it finished.

Why: a finished task's result must not be lost because Redis is away; the worker keeps it
(``PendingRecord``) and records it, once (the same claim's owner token), when the store answers.
When to try again and what to log: engine/store/outage.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.handlers.base import HandlerResult, TaskFailure
from engine.model import Task


@dataclass(frozen=True)
class PendingRecord:
    """A finished task whose outcome the store has not taken yet: kept until it answers."""

    task: Task
    outcome: HandlerResult | TaskFailure
    stopped: bool  # hand it back (release) instead of recording an outcome
    finished_at: float  # the outcome's time, kept for the record (elapsed, attempt end)
