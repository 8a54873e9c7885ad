"""Escalation records, one JSON file each in ``shared/state/escalations/``.

States: pending -> approved -> sent -> answered | failed; pending -> denied | expired.
Transitions are checked here so no caller can, say, send a denied request.
Records that left ``pending`` are pruned after a retention (``prune``); what was spent
stays in the cost ledger, and every transition is in the event log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # filelock is imported where a lock is taken: the dashboard reads states only
    from filelock import FileLock

from engine.atomic import atomic_write_bytes
from engine.ids import IdKind, InvalidId, check_escalation_id, id_problem, is_valid_id
from engine.safeio import UnsafeFileError, ensure_real_dir, read_json
from engine.schema import SchemaError, from_plain, to_plain

MAX_RECORD_BYTES = 4_000_000  # a record holds one request payload (prompt and context)

class EscalationState(StrEnum):
    """Where an escalation request is (its record's ``state``; the dashboard and metrics show it)."""

    PENDING = "pending"
    APPROVED = "approved"
    SENT = "sent"
    ANSWERED = "answered"
    FAILED = "failed"
    DENIED = "denied"
    EXPIRED = "expired"


PENDING, APPROVED, SENT, ANSWERED, FAILED, DENIED, EXPIRED = tuple(EscalationState)
OPEN_STATES = (PENDING, APPROVED, SENT)
"""Not decided yet, or decided and not finished."""
_ALLOWED = {
    PENDING: {APPROVED, DENIED, EXPIRED},
    APPROVED: {SENT, FAILED},
    SENT: {ANSWERED, FAILED},
}


class EscalationStateError(RuntimeError):
    pass


@dataclass(frozen=True)
class CasResult:
    """What ``compare_and_set`` did: ``written``, or not, with the stored record (the winner's; None if gone)."""

    written: bool
    current: Escalation | None


@dataclass(frozen=True)
class Escalation:
    escalation_id: str
    task_id: str
    state: EscalationState
    reason: str
    provider: str  # node name
    model: str
    payload: dict[str, Any]  # exactly what would be sent
    est_input_tokens: int
    est_cost_usd: float
    created_at: float
    expires_at: float | None
    sensitive: bool = False
    attempts: tuple[str, ...] = ()  # summaries of the local attempts
    decided_at: float | None = None
    decided_by: str | None = None
    deny_reason: str | None = None
    answer: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    budget_override: bool = False
    history: tuple[str, ...] = field(default_factory=tuple)


def transition(e: Escalation, new_state: EscalationState, now: float, note: str = "", **changes: Any) -> Escalation:
    if new_state not in _ALLOWED.get(e.state, set()):
        raise EscalationStateError(f"escalation {e.escalation_id} is {e.state}; cannot become {new_state}")
    entry = f"{now:.3f} {e.state}->{new_state}" + (f" {note}" if note else "")
    return replace(e, state=new_state, history=e.history + (entry,), **changes)


def settled_at(e: Escalation) -> float:
    """When the record last changed state: the time that starts its retention."""
    try:
        return float(e.history[-1].split(" ", 1)[0])
    except (IndexError, ValueError):
        return max(e.created_at, e.decided_at or 0.0)


def _ids_problem(e: Escalation, file_id: str) -> str | None:
    if e.escalation_id != file_id:
        return f"escalation_id {e.escalation_id!r} does not match its file name {file_id}.json"
    why = id_problem(IdKind.TASK, e.task_id)
    return None if why is None else f"task_id: {InvalidId(IdKind.TASK, e.task_id, why)}"


class EscalationStore:
    """The file store's ``EscalationRecords``: one JSON file per escalation, and per escalation two cross-process locks in ``.locks/``:
    ``<id>.lock`` is held for a decision (read, check, write: approve, deny, expire, claim the
    send), ``<id>.sending`` for as long as a process is sending it, so a record left ``sent``
    by a process that died is recognisable (its sending lock is free)."""

    def __init__(self, directory: Path, *, on_reject: Callable[[str, str], None] | None = None) -> None:
        self.dir = Path(directory)
        self.on_reject = on_reject  # (escalation id, reason) for a record moved to rejected/
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock_dir = self.dir / ".locks"

    def _lock(self, escalation_id: str, suffix: str, timeout: float) -> FileLock:
        from filelock import FileLock

        self.lock_dir.mkdir(exist_ok=True)
        path = str(self.lock_dir / f"{check_escalation_id(escalation_id)}{suffix}")
        try:  # filelock 4 would unlink the file on release unless told not to (3.x always keeps it)
            return FileLock(path, timeout=timeout, preserve_lock_file=True)  # type: ignore[call-arg,unused-ignore]
        except TypeError:
            return FileLock(path, timeout=timeout)

    def decision_lock(self, escalation_id: str, timeout: float = 30.0) -> FileLock:
        """Held for a few file operations; a new FileLock each call, so threads exclude each other too."""
        return self._lock(escalation_id, ".lock", timeout)

    def sending_lock(self, escalation_id: str) -> FileLock:
        return self._lock(escalation_id, ".sending", 0.0)

    def compare_and_set(self, new: Escalation, expected: EscalationState) -> CasResult:
        """Under the record's decision lock: write ``new`` only while the record is ``expected``."""
        with self.decision_lock(new.escalation_id):
            cur = self.get(new.escalation_id)
            if cur is None or cur.state != expected:
                return CasResult(False, cur)
            self.save(new)
            return CasResult(True, new)

    def hold_sending(self, escalation_id: str, hold_s: float) -> _FileHold | None:
        """The sending lock, held until ``release`` (or this process's death); None if another holds it."""
        from filelock import Timeout

        lock = self.sending_lock(escalation_id)
        try:
            lock.acquire()
        except Timeout:
            return None
        return _FileHold(lock)

    def _path(self, escalation_id: str) -> Path:
        return self.dir / f"{check_escalation_id(escalation_id)}.json"

    def save(self, e: Escalation) -> None:
        atomic_write_bytes(self._path(e.escalation_id), json.dumps(to_plain(e), indent=1).encode())

    def get(self, escalation_id: str) -> Escalation | None:
        if not is_valid_id(IdKind.ESCALATION, escalation_id):
            return None  # never a path from a bad id: "no such escalation"
        path = self._path(escalation_id)
        try:
            e = from_plain(Escalation, read_json(path, MAX_RECORD_BYTES))
        except FileNotFoundError:
            return None
        except (UnsafeFileError, SchemaError) as exc:
            self._quarantine(path, str(exc))
            return None
        why = _ids_problem(e, escalation_id)
        if why is not None:  # its ids would become paths (the task's file, the record's own)
            self._quarantine(path, why)
            return None
        return e

    def _quarantine(self, path: Path, reason: str) -> None:
        """Move a bad record to ``rejected/`` once, with its reason (never re-read every tick)."""
        rejected = self.dir / "rejected"
        try:
            ensure_real_dir(rejected)  # never a link out of the root
            os.replace(path, rejected / path.name)  # a symlink moves as the link itself
            # a new file renamed over the name: a link planted there is replaced, never written through
            atomic_write_bytes(rejected / f"{path.name}.reason.txt", (reason + "\n").encode())
        except OSError:
            pass  # vanished, or the disk refuses: it is still refused, and reported below
        if self.on_reject is not None:
            self.on_reject(path.stem, reason)

    def all(self) -> list[Escalation]:
        out = []
        for p in sorted(self.dir.glob("*.json")):
            e = self.get(p.stem)
            if e is not None:
                out.append(e)
        return sorted(out, key=lambda e: e.created_at)

    def for_task(self, task_id: str) -> list[Escalation]:
        return [e for e in self.all() if e.task_id == task_id]

    def prune(self, older_than: float) -> list[str]:
        """Remove records that are no longer pending and settled before ``older_than``.
        Pending ones are never removed (they await a decision); unreadable files are moved to
        rejected/ (with their reason) for the operator to look at. Returns the removed ids."""
        removed = []
        for p in sorted(self.dir.glob("*.json")):
            e = self.get(p.stem)
            if e is None or e.state == PENDING or settled_at(e) >= older_than:
                continue
            p.unlink(missing_ok=True)
            for suffix in (".lock", ".sending"):
                (self.lock_dir / f"{e.escalation_id}{suffix}").unlink(missing_ok=True)
            removed.append(e.escalation_id)
        return removed


class _FileHold:
    def __init__(self, lock: FileLock) -> None:
        self._lock = lock

    def release(self) -> None:
        self._lock.release()
