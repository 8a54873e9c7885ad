"""What the operator is told about an escalation's decision, and where it is recorded.

A decision (approve, deny, expiry) and a send are state transitions made under the
escalation's lock in the store (``EscalationStore.decision_lock``), by whichever process
makes them: the CLI with or without a supervisor, the supervisor for the dashboard, the
supervisor's expiry. The loser of a race is told who won (``AlreadyDecided``), and every
transition is one line in ``logs/audit.jsonl``, written by the process that made it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class FileAudit:
    """Appends one JSON line per escalation transition to the rig's audit log."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.errors = 0  # lines the disk refused (the decision itself stands)

    def __call__(self, record: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, default=str) + "\n")
        except OSError:
            self.errors += 1


def audit_record(e: Escalation, transition: str, now: float, by: str | None, message: str) -> dict[str, Any]:
    """One audit line: told apart from the command processor's lines by ``kind``."""
    from engine.model import iso

    return {"at": iso(now), "kind": "escalation_decision", "escalation_id": e.escalation_id, "task_id": e.task_id,
            "transition": transition, "state": e.state, "by": by, "message": message}


__all__ = ["AlreadyDecided", "Audit", "FileAudit", "already_text", "audit_record", "clock_text"]
