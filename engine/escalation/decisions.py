"""What the operator is told about an escalation's decision, and where it is recorded.

A decision (approve, deny, expiry) and a send are state transitions made by one
compare-and-set in the store (``EscalationRecords.compare_and_set``), by whichever process
makes them: the CLI with or without a supervisor, the supervisor for the dashboard, the
supervisor's expiry. The loser of a race is told who won (``AlreadyDecided``), and every
transition is one line in the audit log (``logs/audit.jsonl``, or the cluster's Redis stream),
written by the process that made it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.audit import FileAuditLog
from engine.escalation.store import APPROVED, DENIED, EXPIRED, Escalation, EscalationStateError

Audit = Callable[[dict[str, Any]], None]


class AlreadyDecided(EscalationStateError):
    """The escalation was decided (or sent) by someone else first; ``escalation`` is its record now."""

    def __init__(self, e: Escalation) -> None:
        self.escalation = e
        super().__init__(already_text(e))


def clock_text(ts: float | None) -> str:
    return "an unknown time" if ts is None else time.strftime("%H:%M:%S", time.localtime(ts))


def already_text(e: Escalation) -> str:
    """``escalation esc-1 was already approved by cli bob@rig at 12:03:04 (now answered)``."""
    verb = e.state if e.state in (APPROVED, DENIED, EXPIRED) else ("approved" if e.decided_by else e.state)
    who = f" by {e.decided_by}" if e.decided_by else ""
    when = e.decided_at if e.decided_at is not None else _last_change(e)
    now_state = "" if e.state == verb else f" (now {e.state})"
    reason = f": {e.deny_reason}" if e.state == DENIED and e.deny_reason else ""
    return f"escalation {e.escalation_id} was already {verb}{who} at {clock_text(when)}{reason}{now_state}"


def _last_change(e: Escalation) -> float | None:
    try:
        return float(e.history[-1].split(" ", 1)[0])
    except (IndexError, ValueError):
        return None


FileAudit = FileAuditLog
"""The file store's audit log (``engine.audit``), under its older name."""


def audit_record(e: Escalation, transition: str, now: float, by: str | None, message: str) -> dict[str, Any]:
    """One audit line: told apart from the command processor's lines by ``kind``."""
    from engine.model import iso

    return {"at": iso(now), "kind": "escalation_decision", "escalation_id": e.escalation_id, "task_id": e.task_id,
            "transition": transition, "state": e.state, "by": by, "message": message}


__all__ = ["AlreadyDecided", "Audit", "FileAudit", "already_text", "audit_record", "clock_text"]
