"""The queue seen by workers, the supervisor, the cloud tier, the CLI and the dashboard.

Small protocols, each a capability a caller needs; ``RigQueue`` is all of them together, what a
store hands out. FileQueue (shared filesystem, one rig) implements every one, and a Redis store
for several rigs implements the same; callers use only what is declared here (no ``getattr``
probing). tests/conformance/ defines the contract for every implementation. Methods that decide
anything take ``now`` explicitly, so policy is testable with a fake clock; values that cross
processes (``Refusal``, ``Place``, ``TaskStatus``) are enums.

- ``TaskQueue``: submit, claim under a ``ClaimPolicy`` with a lease, heartbeat, complete, fail
  (backoff), release, reap expired leases, promote due retries, operator retry/cancel and
  ``resolve_failed``, the views (get, where, claims, counts, waiting, recent).
- ``QueueWaker``: an idle worker sleeps in ``wait_for_change`` until a submit/release/retry
  somewhere, its wake pipe, or ``next_due``.
- ``AwaitingStore``: tasks parked while their escalation waits for an operator (the cloud tier).
- ``QueuedSource``: pages of claimable tasks in claim order for people (the dashboard).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from engine.event_types import EventType
from engine.model import Executor, Task, TaskClass, TaskType


class StoreUnavailable(ConnectionError):
    """The store did not answer (Redis down, cut off, or too slow for the client's timeout).

    An ``OSError``, so callers that already survive a full disk survive it the same way. Raised by
    any queue or channel call; the call may or may not have applied, and a resend of the same
    transition applies it once (owner tokens and request ids). The file store raises it for
    nothing: its failures stay ``OSError``s naming the file. The worker keeps a finished task's
    result while the store is unavailable and records it once it answers (engine/worker/outage.py).
    """


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
    rig: str | None = None  # the rig it is pinned to (its lane says so); None: any rig's workers

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
    rig: str | None = None  # pinned to this rig: "pinned to rig X" when no live worker is on it


@dataclass(frozen=True)
class WaitingLane:
    """Claimable tasks (queue/) of one class, model, type and executor, known from names only:
    the supervisor's stall alert asks whether an idle worker could take any of them."""

    task_class: str
    model: str | None
    kind: str | None  # the type where names record it (script types), else None
    executor: str  # worker | brain | any
    count: int
    rig: str | None = None  # the rig these tasks are pinned to; None: any rig's workers


@dataclass(frozen=True)
class QueueCounts:
    """Counts per state ("held", "delayed", "queue", "processing", "complete", "failed") and class."""

    by_state: dict[str, dict[str, int]] = field(default_factory=dict)
    lanes: tuple[WaitingLane, ...] = ()
    """queue/ by what a claim must match; empty from a queue that does not say (judged by class)."""

    def total(self, state: str) -> int:
        return sum(self.by_state.get(state, {}).values())


class Place(StrEnum):
    """Where a task is in its life; the keys of ``QueueCounts.by_state``."""

    HELD = "held"  # waiting on dependencies
    DELAYED = "delayed"  # in backoff after a failed attempt
    QUEUE = "queue"  # claimable
    PROCESSING = "processing"  # claimed, under a lease
    AWAITING = "awaiting"  # its escalation awaits an operator's decision (AwaitingStore)
    COMPLETE = "complete"
    FAILED = "failed"


class Refusal(StrEnum):
    """Why the queue said no to an operator action (retry, cancel, resolve, park)."""

    INVALID_ID = "invalid_id"  # not a safe task id: nothing was looked up
    NOT_FOUND = "not_found"  # not in the state the action needs (retry: not failed; cancel: not waiting or running)
    INVALID_FILE = "invalid_file"  # retry: the failed record is an unreadable task file, not a task
    DEPENDENCY_FAILED = "dependency_failed"  # retry: a dependency failed too; retry that one
    AWAITING_APPROVAL = "awaiting_approval"  # retry/cancel: its escalation must be approved or denied first
    ALREADY_COMPLETE = "already_complete"  # resolve: a result is recorded already (recorded once)


@dataclass(frozen=True)
class Verdict:
    """The answer to an operator action: truthy when done; else ``refusal`` and a ``message`` for
    people that names the task and what to do instead."""

    refusal: Refusal | None = None
    message: str = ""

    def __bool__(self) -> bool:
        return self.refusal is None

    @property
    def ok(self) -> bool:
        return self.refusal is None

    @classmethod
    def refused(cls, refusal: Refusal, message: str) -> Verdict:
        return cls(refusal, message)


DONE = Verdict()


@dataclass(frozen=True)
class ClaimView:
    """The live claim of a running task: who holds it, since when, until when (lease)."""

    task_id: str
    worker_id: str
    claimed_at: float
    lease_expires: float
    instance: str = ""  # the claiming process (engine.proctable), "" when unknown


DEFAULT_PAGE = 100


@dataclass(frozen=True)
class QueuedRow:
    """One waiting (claimable) task as a listing shows it, known without reading the task."""

    task_id: str
    task_class: str
    model: str | None
    priority: int
    enqueued_at: float
    position: int  # 0-based place in claim order among the rows that matched the filter

    @property
    def name(self) -> str:
        """The name part of ``<batch>.<name>`` ids (plans); the whole id otherwise."""
        _batch, dot, rest = self.task_id.partition(".")
        return rest if dot and rest else self.task_id


@dataclass(frozen=True)
class QueuedPage:
    rows: tuple[QueuedRow, ...]
    offset: int
    matched: int  # rows that passed the filter (the whole queue without one)
    total: int  # everything claimable


class QueuedSource(Protocol):
    """Pages of the claimable tasks in claim order, for people (the dashboard's Tasks view) at any
    depth: rows ``offset .. offset+limit``, only those whose id, class or model contain every word
    of ``text`` (case-insensitive). Read-only; FileQueue's is ``engine.queue.listing.QueueLister``."""

    def page(self, offset: int = 0, limit: int = DEFAULT_PAGE, text: str = "") -> QueuedPage: ...

    def close(self) -> None: ...


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
             return_code: int | None = None, escalate: EscalationRule | None = None) -> None:
        """Record a failed attempt: retry with backoff while retries remain, else failed/; or, when
        ``escalate`` gives a reason for the task as it failed for good, straight to awaiting
        approval (never counted as failed, its dependents held) with no escalation yet: the cloud
        tier raises one and ``attach``es it."""
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

    def retry(self, task_id: str, now: float) -> Verdict:
        """A failed task (and the dependents its failure took down) back to waiting, retries reset.
        Refused (a value, never an exception) for an unknown or non-failed task, a task whose
        dependency failed too, a task awaiting approval."""
        ...

    def retry_all_failed(self, now: float) -> list[str]:
        """``retry`` every failed task; the ids that went back."""
        ...

    def cancel(self, task_id: str, now: float, reason: str) -> Verdict:
        """A waiting, held, delayed or running task to failed ("cancelled: reason"), its dependents
        in cascade; a running task's owner then finds its heartbeat refused."""
        ...

    def resolve_failed(self, task_id: str, result: dict[str, Any], now: float,
                       note: str = "escalation") -> Verdict:
        """Complete a failed (or awaiting) task with a result found elsewhere (an approved escalation);
        recorded once; the dependents its failure took down are held or released again."""
        ...

    def get(self, task_id: str) -> Task | None:
        """The task as stored now, its ``status`` set from where it is; None if unknown."""
        ...

    def where(self, task_id: str) -> Place | None:
        """Where the task is now; None if unknown."""
        ...

    def claim_of(self, task_id: str) -> ClaimView | None:
        """The live claim of a running task; None when it is not claimed."""
        ...

    def claims(self, worker_id: str | None = None) -> list[ClaimView]:
        """Every live claim (of one worker, or all), expired or not: as many as tasks running, never
        a walk of the waiting work. The supervisor recovers a dead worker's tasks from these."""
        ...

    def counts(self) -> QueueCounts: ...

    def oldest_waiting(self, now: float, limit: int) -> list[WaitingTask]: ...

    def recent(self, state: str, limit: int) -> list[Task]:
        """Most recent tasks in complete/failed/processing, newest first."""
        ...

    def failed_stamp(self) -> int | None:
        """A number that changes whenever tasks enter or leave failed (the cloud tier looks once a
        tick before it reads ``recent("failed")``); None when the queue cannot tell."""
        ...


class QueueWaker(Protocol):
    """Waking an idle worker without polling."""

    def wait_for_change(self, timeout_s: float, *, wake_fd: int | None = None) -> bool:
        """Sleep until the waiting work changes anywhere (a submit, release, retry, promote from
        any process), ``wake_fd`` is readable, a watched file changes, or ``timeout_s`` passes.
        True when woken by a change, False on timeout."""
        ...

    def wakes_on_change(self) -> bool:
        """True when ``wait_for_change`` returns soon after a change (inotify, pub/sub); False when
        it can only sleep out its timeout (the worker then polls with a short timeout)."""
        ...

    def next_due(self) -> float | None:
        """When the earliest task in backoff becomes due (wall clock), so an idle worker does not
        sleep past it; None when nothing waits in backoff."""
        ...

    def watch(self, path: Path, names: frozenset[str] | None = None) -> None:
        """Also wake ``wait_for_change`` on changes in local directory ``path`` (only to ``names``
        in it, when given: the worker's own control file)."""
        ...

    def close(self) -> None:
        """Release watches, connections and threads; the queue is not used after this."""
        ...


EscalationRule = Callable[[Task], str | None]
"""For a task that failed for good (its last attempt and error recorded): why an operator should
be asked to send it to the cloud tier, or None (``engine.escalation.rule``)."""


class AwaitingStore(Protocol):
    """Tasks whose escalation awaits an operator: out of failed (not counted as failures, not
    retried by "retry all"), their dependents held; then exactly one of resolve, fail, retry_local."""

    def park(self, task_id: str, escalation_id: str, now: float) -> Verdict:
        """A failed task moves here while ``escalation_id`` is decided (idempotent)."""
        ...

    def attach(self, task_id: str, escalation_id: str, now: float) -> Verdict:
        """A task parked by its worker's failure (no escalation yet) gets the one the cloud tier
        raised; refused when it is not awaiting or has another one (idempotent for the same)."""
        ...

    def get(self, task_id: str) -> Task | None: ...

    def tasks(self) -> list[Task]: ...

    def counts(self) -> dict[str, int]:
        """task class -> number awaiting approval."""
        ...

    def refusal(self, task_id: str) -> str | None:
        """Why retry or cancel leave a parked task alone; None when it is not parked."""
        ...

    def resolve(self, task_id: str, result: dict[str, Any], now: float, note: str = "escalation") -> Verdict:
        """The escalation's answer completes it (recorded once); dependents released."""
        ...

    def fail(self, task_id: str, reason: str, now: float,
             event: EventType = EventType.TASK_ESCALATION_DENIED) -> Verdict:
        """Back to failed with ``reason`` (a deny, a send that got no answer); dependents cascade."""
        ...

    def retry_local(self, task_id: str, now: float) -> Verdict:
        """Back to the queue, retries reset (an expiry whose default is to try locally)."""
        ...

    def recover(self, now: float) -> list[str]:
        """Finish moves a crash cut short; the ids touched."""
        ...


class FailedTaskSource(Protocol):
    """The failed tasks the cloud tier looks at (a slice of ``TaskQueue``; tests give doubles)."""

    def recent(self, state: str, limit: int) -> list[Task]: ...

    def get(self, task_id: str) -> Task | None: ...

    def retry(self, task_id: str, now: float) -> Verdict: ...

    def failed_stamp(self) -> int | None: ...


class TaskLister(Protocol):
    """Every task id in one place, for an operator's whole-store read, and forgetting a failed task
    (``galaxy store migrate``); listing walks the place, so nothing on a hot path calls it."""

    def ids_in(self, place: Place) -> list[str]:
        """The ids now in ``place`` (held, delayed, queue, processing, awaiting or failed; complete is
        refused with ``ValueError``: read those one by one with ``get``), in no promised order."""
        ...

    def restore(self, tasks: Sequence[Task], now: float) -> list[str]:
        """Take tasks moved from another store (``galaxy store migrate``), each where its record says
        (engine/queue/restoring.py): failed with its error, complete with its result, delayed until its
        ``not_before``, else queued or held on its dependencies; attempts and retry counts kept. All or
        none: ``TaskValidationError`` naming every problem (a known id, an unknown dependency, a running
        or awaiting task) before anything is written. One ``task_migrated`` event each. Not for new work."""
        ...

    def forget_failed(self, task_id: str, now: float) -> Verdict:
        """Remove a failed task for good (its record, attempts, its place in the failed count and
        list): the store no longer knows its id. ``galaxy store migrate`` uses it once the target
        holds the task. Refused (NOT_FOUND) for a task that is not failed."""
        ...


class EscalationQueue(TaskQueue, Protocol):
    """What the cloud tier needs: failed tasks, resolve, and the awaiting store."""

    @property
    def awaiting(self) -> AwaitingStore: ...


class RigQueue(EscalationQueue, QueueWaker, TaskLister, Protocol):
    """Everything together: what a store hands the worker, the supervisor and the CLI."""
