"""Queue, escalations and nodes text, fed the snapshot by the app. The Tasks view lives in
``widgets/tasks.py`` and the Events view in ``widgets/events.py`` (re-exported here)."""

from __future__ import annotations

from textual.content import Content

from engine.snapshot import Snapshot
from galaxy_tui.render import Part, clip, fmt_duration
from galaxy_tui.widgets.events import EventsPanel
from galaxy_tui.widgets.events import events_content as _events_content
from galaxy_tui.widgets.tables import KeyedTable, Row
from galaxy_tui.widgets.tasks import TasksTable, task_rows

__all__ = ["EscalationsTable", "EventsPanel", "TasksTable", "escalation_rows", "events_content", "nodes_content",
           "task_rows"]


class EscalationsTable(KeyedTable):
    COLUMNS = (("state", "state", 8), ("task", "task", 12), ("provider", "to", 22), ("cost", "est. cost", 10),
               ("reason", "why", None))


def escalation_rows(snap: Snapshot) -> list[Row]:
    order = sorted(snap.escalations, key=lambda e: (e.state != "pending", e.created_at))
    return [(e.escalation_id, (Content.styled(e.state, "$warning bold" if e.state == "pending" else "$text-muted"),
                               e.task_id, f"{e.provider}/{e.model}",
                               f"${e.est_cost_usd:.4f}", clip(e.reason, 40).rstrip())) for e in order]


def queue_parts(snap: Snapshot, max_waiting: int = 4) -> list[list[Part]]:
    """Depth per state and class, then the oldest waiting tasks and why they wait: each line as
    (text, style) parts (``QueuePanel`` draws them line by line)."""
    counts = snap.queue.counts
    lines: list[list[Part]] = []
    if not counts:
        lines.append([("queue empty", "$text-muted")])
    for state, per in counts.items():
        total = sum(per.values())
        style = "$error bold" if state in ("failed", "dead") and total else "bold"
        split = "  ".join(f"{c} {n}" for c, n in sorted(per.items()) if n)
        lines.append([(f"{state:<10}", style), (f"{total:>4} ", style), (split, "$text-muted")])
    if snap.queue.waiting:
        lines.append([("oldest waiting:", "$text-muted")])
        for w in sorted(snap.queue.waiting, key=lambda w: w.waiting_since)[:max_waiting]:
            age = fmt_duration(snap.taken_at - w.waiting_since)
            lines.append([(f" {clip(w.name, 14)}", "bold"), (f"{age:>6} ", "$text-muted"), (w.reason, "$warning")])
    return lines


def events_content(snap: Snapshot, limit: int) -> Content:
    """The newest ``limit`` events, claims and starts hidden (``widgets.events`` has the panel)."""
    return _events_content(snap.events, show_all=False, limit=limit)


def nodes_content(snap: Snapshot) -> Content:
    lines = []
    for n in snap.nodes:
        health = "up" if n.healthy else "DOWN" if n.healthy is False else "?"
        style = "$success" if n.healthy else "$error bold" if n.healthy is False else "$text-muted"
        breaker = "" if n.breaker == "closed" else f" breaker {n.breaker.upper()}"
        lat = "-" if n.latency_ms is None else f"{n.latency_ms:.0f}ms"
        lines.append(Content.assemble((f"t{n.tier} {clip(n.name, 12)} ", "bold"), (f"{health:<5}", style),
                                      f"{lat:>7} load {n.load} {clip(n.model, 16)}",
                                      (breaker, "$error bold")))
    return Content("\n").join(lines)
