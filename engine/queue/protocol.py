"""The queue seen by workers and the supervisor.

FileQueue (shared filesystem, one rig) implements it now; a Redis-streams queue for
several rigs must slot in behind the same protocol without touching workers or the
supervisor. All methods take ``now`` explicitly so policy is testable with a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.model import Executor, Task, TaskClass, TaskType


@dataclass(frozen=True)
class Candidate:
    """What the claim policy sees of a waiting task, known without reading its file.

    A queue offers only the head of each (affinity, priority) lane, so the number of
    candidates depends on how many kinds of work wait, never on queue depth.
    """

    task_id: str
    task_class: TaskClass
    model: str | None
    priority: int
    created_at: float  # also the time it became claimable: age for the aging rule
    lane_depth: int = 1  # tasks waiting in this candidate's lane (for batching decisions)
    kind: TaskType | None = None  # its type where the name records it (script types, non-worker executor)
    executor: Executor = Executor.WORKER  # which role of group may run it (scheduling.capability)

    @property
    def affinity(self) -> str:
        return f"{self.task_class.value}:{self.model or ''}"


ClaimPolicy = Callable[[Sequence[Candidate], float], Sequence[Candidate]]
"""Orders candidates best-first at time ``now``; may drop ones this worker must not take."""


@dataclass(frozen=True)
class WaitingTask:
    task_id: str
    name: str
    task_class: str
    priority: int
    waiting_since: float
    reason: str  # e.g. "dependency pending: t3", "backoff until 12:03:04", "no worker for class llm"
    depends_on: tuple[str, ...] = ()
    model: str | None = None  # for "no worker serves model M" (scheduling.capability.wait_reason)
    kind: str | None = None  # the task's type where its queue name records it (script types)
    executor: str = "worker"  # worker | brain | any: "no brain worker is running"


@dataclass(frozen=True)
class WaitingLane:
    """Claimable tasks (queue/) of one class, model, type and executor, known from names only:
    the supervisor's stall alert asks whether an idle worker could take any of them."""

    task_class: str
    model: str | None
    kind: str | None  # the type where names record it (script types), else None
    executor: str  # worker | brain | any
    count: int


@dataclass(frozen=True)
class QueueCounts:
    """Counts per state ("held", "delayed", "queue", "processing", "complete", "failed") and class."""

    by_state: dict[str, dict[str, int]] = field(default_factory=dict)
    lanes: tuple[WaitingLane, ...] = ()
    """queue/ by what a claim must match; empty from a queue that does not say (judged by class)."""

    def total(self, state: str) -> int:
        return sum(self.by_state.get(state, {}).values())


class TaskQueue(Protocol):
    def submit(self, tasks: Sequence[Task], now: float) -> list[str]:
        """Enqueue tasks (held back while a dependency is unmet). Returns their ids."""
        ...

    def claim(self, worker_id: str, now: float, policy: ClaimPolicy, lease_s: float) -> Task | None:
        """Take the best task for this worker under ``policy``, with a lease; None if nothing fits."""
        ...

    def heartbeat(self, task_id: str, worker_id: str, now: float, lease_s: float) -> bool:
        """Extend the lease. False if this worker no longer holds the task (reaped, cancelled)."""
        ...

    def complete(self, task_id: str, worker_id: str, result: dict[str, Any], now: float) -> None: ...

    def fail(self, task_id: str, worker_id: str, error: str, now: float, *, retryable: bool = True,
             return_code: int | None = None) -> None:
        """Record a failed attempt: retry with backoff while retries remain, else failed/."""
        ...

    def release(self, task_id: str, worker_id: str, now: float, reason: str) -> None:
        """Hand a task back untouched (shutdown): no retry is charged."""
        ...

    def reap_stale(self, now: float) -> list[str]:
        """Expired leases go back to the queue (or to failed after max_retries)."""
        ...

    def promote_due(self, now: float) -> list[str]:
        """Move tasks whose backoff has passed from delayed to the queue."""
        ...

    def retry(self, task_id: str, now: float) -> bool: ...

    def retry_all_failed(self, now: float) -> list[str]: ...

    def cancel(self, task_id: str, now: float, reason: str) -> bool: ...

    def get(self, task_id: str) -> Task | None: ...

    def counts(self) -> QueueCounts: ...

    def oldest_waiting(self, now: float, limit: int) -> list[WaitingTask]: ...

    def recent(self, state: str, limit: int) -> list[Task]:
        """Most recent tasks in complete/failed/processing, newest first."""
        ...
