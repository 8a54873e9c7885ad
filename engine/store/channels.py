"""The cross-process channels besides the task queue, as small protocols.

Every process that publishes a snapshot, sends or applies an operator command, appends an
event, keeps escalation records or writes the audit log does it through one of these, so
the file store (one rig, the shared root) and the Redis store (a cluster of rigs) are
interchangeable. ``tests/conformance/`` holds one contract suite per protocol, run against
both implementations; what a method promises is written here and checked there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.commands import Command
    from engine.escalation.store import CasResult, Escalation, EscalationState


class EventStream(Protocol):
    """The event log: one JSON line per state change, appended by every process."""

    def append(self, line: str) -> None:
        """Add one rendered event line (no newline). Never raises: a lost line is counted in ``write_errors``."""
        ...

    def tail(self, n: int = 50) -> list[dict[str, Any]]:
        """The last ``n`` events, oldest first; after trimming or rotation, the newest that are kept."""
        ...

    def read_after(self, cursor: str | None, limit: int) -> tuple[list[str], str | None]:
        """For a follower: up to ``limit`` whole lines appended after ``cursor`` (None: from the oldest kept),
        oldest first, and the cursor to pass next. Lines trimmed or rotated away before they were read are
        skipped, never repeated."""
        ...

    def close(self) -> None:
        """Release what the stream holds open for its writes (the file store's descriptor). Safe to
        repeat; a later ``append`` opens it again, so closing never loses a line."""
        ...

    @property
    def write_errors(self) -> int: ...


@dataclass(frozen=True)
class PublishedSnapshot:
    """A rig's latest snapshot as its supervisor published it, and when (the publisher's ``now``)."""

    rig: str
    data: bytes
    published_at: float

    def age(self, now: float) -> float:
        return now - self.published_at

    def is_stale(self, now: float, stale_after_s: float) -> bool:
        """A rig whose supervisor stopped publishing shows STALE: time is the caller's ``now``."""
        return now - self.published_at > stale_after_s


class SnapshotStore(Protocol):
    """The latest snapshot of each rig. One writer per rig (its supervisor); readers anywhere."""

    def publish(self, rig: str, data: bytes, now: float) -> None:
        """Replace ``rig``'s snapshot with ``data`` (a reader sees the old one or the new one, whole)."""
        ...

    def latest(self, rig: str) -> PublishedSnapshot | None:
        """``rig``'s last published snapshot, or None if it never published."""
        ...

    def rigs(self) -> list[str]:
        """Every rig that has published, sorted by name."""
        ...


@dataclass(frozen=True)
class IncomingCommand:
    """One command waiting to be applied: the command, or why it could not be read (then ``command``
    is None and ``problem`` says why). ``ref`` is the channel's own handle (a file name, a stream id)."""

    ref: str
    command: Command | None
    problem: str | None = None


class CommandSender(Protocol):
    def send(self, command: Command) -> None:
        """Deliver ``command`` to the rig this sender is for. Sending the same ``command_id`` again
        (a retry after a lost reply) delivers it at most once."""
        ...


class CommandChannel(CommandSender, Protocol):
    """Operator commands for one rig: any process sends, the rig's supervisor takes and applies."""

    def take(self, limit: int) -> list[IncomingCommand]:
        """Up to ``limit`` waiting commands, oldest first. A command stays waiting until ``done``."""
        ...

    def done(self, item: IncomingCommand) -> None:
        """``item`` was applied (or refused): it is never handed out again, nor is a resend of its id."""
        ...

    def withdraw(self, command: Command) -> bool:
        """Take back a sent command nobody answered: True if it was still waiting (it is gone now and
        will not be applied), False if it is not waiting any more (taken and done, or never sent)."""
        ...


class SendingHold(Protocol):
    def release(self) -> None: ...


class EscalationRecords(Protocol):
    """Escalation records, shared by every process that decides or sends them."""

    on_reject: Callable[[str, str], None] | None
    """Told (escalation id, reason) about a record that cannot be read (it is then set aside)."""

    def save(self, e: Escalation) -> None:
        """Create (or overwrite) a record: the creator's write. Decisions go through ``compare_and_set``."""
        ...

    def get(self, escalation_id: str) -> Escalation | None: ...

    def all(self) -> list[Escalation]:
        """Every readable record, oldest ``created_at`` first."""
        ...

    def for_task(self, task_id: str) -> list[Escalation]: ...

    def compare_and_set(self, new: Escalation, expected: EscalationState) -> CasResult:
        """Write ``new`` only if the stored record is still in state ``expected``, atomically across
        processes and rigs: of two deciders, one wins; the loser gets the winner's record."""
        ...

    def hold_sending(self, escalation_id: str, hold_s: float) -> SendingHold | None:
        """Mark this process as sending ``escalation_id`` (None: another one is). A hold whose process
        died ends (the file lock with the process, the Redis one after ``hold_s``)."""
        ...

    def prune(self, older_than: float) -> list[str]:
        """Remove records no longer pending that settled before ``older_than``; returns their ids."""
        ...


class AuditLog(Protocol):
    """Every operator command applied or refused, and every escalation transition: append-only."""

    def append(self, record: dict[str, Any]) -> None:
        """Add one record. Never raises: a lost line is counted in ``errors`` (the action stands)."""
        ...

    def read(self, n: int = 100) -> list[dict[str, Any]]:
        """The last ``n`` records, oldest first."""
        ...

    @property
    def errors(self) -> int: ...

    @property
    def last_error(self) -> str:
        """Why the last lost record was lost ("" when none was)."""
        ...

