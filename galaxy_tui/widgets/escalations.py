"""Escalation rows: the main screen's panel lists pending ones only (decided ones are counted
in its title and listed on the escalations screen's own tab)."""

from __future__ import annotations

from textual.content import Content

from engine.snapshot import EscalationView, Snapshot
from galaxy_tui.render import clip, fmt_duration
from galaxy_tui.widgets.tables import KeyedTable, Row

DECIDED_STYLE = {"approved": "$success", "sent": "$success", "answered": "$success", "denied": "$error",
                 "expired": "$text-muted", "failed": "$error"}


class EscalationsTable(KeyedTable):
    COLUMNS = (("state", "state", 8), ("task", "task", 14), ("cost", "≤ cost", 8), ("expires", "expires", 7),
               ("reason", "why", None))


def split(snap: Snapshot) -> tuple[list[EscalationView], list[EscalationView]]:
    """(pending oldest first, decided newest first)."""
    pending = sorted((e for e in snap.escalations if e.state == "pending"), key=lambda e: e.created_at)
    decided = sorted((e for e in snap.escalations if e.state != "pending"), key=lambda e: -e.created_at)
    return pending, decided


def _row(e: EscalationView, now: float) -> Row:
    pending = e.state == "pending"
    state = Content.styled(e.state, "$warning bold" if pending else DECIDED_STYLE.get(e.state, "$text-muted"))
    expires = "-" if e.expires_at is None or not pending else fmt_duration(e.expires_at - now)
    return (e.escalation_id, (state, Content(clip(e.task_id, 14).rstrip()), Content(f"${e.est_cost_usd:.3f}"),
                              Content(expires), Content(clip(e.reason, 60).rstrip())))


def pending_rows(snap: Snapshot) -> list[Row]:
    return [_row(e, snap.taken_at) for e in split(snap)[0]]


def decided_rows(snap: Snapshot) -> list[Row]:
    return [_row(e, snap.taken_at) for e in split(snap)[1]]


def panel_title(snap: Snapshot) -> str:
    pending, decided = split(snap)
    return f"Escalations: {len(pending)} pending" + (f" · {len(decided)} decided (E)" if decided else "")
