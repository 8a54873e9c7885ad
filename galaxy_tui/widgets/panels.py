"""Tasks, queue, escalations, nodes and the event tail: each fed the snapshot by the app."""

from __future__ import annotations

from dataclasses import replace

from textual.content import Content

from engine.snapshot import Snapshot, TaskView
from galaxy_tui.render import clip, fmt_clock, fmt_duration, fmt_rate
from galaxy_tui.widgets.tables import KeyedTable, Row

STATUS_STYLE = {"running": "$accent bold", "processing": "$accent bold", "done": "$success",
                "complete": "$success", "failed": "$error bold", "dead": "$error bold"}


STATUS_SHORT = {"processing": "running", "complete": "done", "cancelled": "cancel"}


def _task_row(t: TaskView, taken_at: float, kind: str, progress: str | None = None) -> Row:
    if t.duration_s is not None:
        dur = t.duration_s
    elif t.started_at:
        dur = (t.ended_at or taken_at) - t.started_at
    else:
        dur = None
    shown = STATUS_SHORT.get(t.status, t.status)
    status = Content.styled(shown, STATUS_STYLE.get(t.status, ""))
    detail = t.error if kind == "failed" else (f"x{t.realtime_factor:.1f} realtime" if t.realtime_factor else "")
    if kind == "running" and progress:
        detail = progress.replace("\n", " ")[-60:]  # the newest partial output
    if t.retry_count:
        detail = f"{detail} (try {t.retry_count + 1})" if detail else f"try {t.retry_count + 1}"
    return (t.task_id, (status, clip(t.name, 20).rstrip(), t.task_class, t.worker_id or "-",
                        fmt_duration(dur), fmt_rate(t.tokens_per_s),
                        Content.styled(clip(detail or "", 60).rstrip(),
                                       "$error" if kind == "failed" else "$text-muted")))


def task_rows(snap: Snapshot) -> list[Row]:
    """Running first, then failed (they need action), then recent."""
    rows: list[Row] = []
    seen: set[str] = set()
    by_task = {w.current_task: w for w in snap.workers if w.current_task}
    for kind, group in (("running", snap.running), ("failed", snap.failed), ("recent", snap.recent)):
        for t in group:
            if t.task_id in seen:
                continue
            seen.add(t.task_id)
            w = by_task.get(t.task_id)
            if kind == "running" and w is not None:  # the worker knows when it started and how fast it goes
                t = replace(t, started_at=t.started_at or w.task_started_at,
                            tokens_per_s=t.tokens_per_s if t.tokens_per_s is not None else w.tokens_per_s)
            rows.append(_task_row(t, snap.taken_at, kind, w.progress if w is not None else None))
    return rows


class TasksTable(KeyedTable):
    COLUMNS = (("status", "state", 7), ("name", "task", 20), ("class", "class", 6), ("worker", "worker", 6),
               ("dur", "time", 5), ("tps", "tok/s", 6), ("detail", "detail / reason", None))


class EscalationsTable(KeyedTable):
    COLUMNS = (("state", "state", 8), ("task", "task", 12), ("provider", "to", 22), ("cost", "est. cost", 10),
               ("reason", "why", None))


def escalation_rows(snap: Snapshot) -> list[Row]:
    order = sorted(snap.escalations, key=lambda e: (e.state != "pending", e.created_at))
    return [(e.escalation_id, (Content.styled(e.state, "$warning bold" if e.state == "pending" else "$text-muted"),
                               e.task_id, f"{e.provider}/{e.model}",
                               f"${e.est_cost_usd:.4f}", clip(e.reason, 40).rstrip())) for e in order]


def queue_content(snap: Snapshot, max_waiting: int = 4) -> Content:
    """Depth per state and class, then the oldest waiting tasks and why they wait."""
    counts = snap.queue.counts
    lines: list[Content] = []
    if not counts:
        lines.append(Content.styled("queue empty", "$text-muted"))
    for state, per in counts.items():
        total = sum(per.values())
        style = "$error bold" if state in ("failed", "dead") and total else "bold"
        split = "  ".join(f"{c} {n}" for c, n in sorted(per.items()) if n)
        lines.append(Content.assemble((f"{state:<10}", style), (f"{total:>4} ", style), (split, "$text-muted")))
    if snap.queue.waiting:
        lines.append(Content.styled("oldest waiting:", "$text-muted"))
        for w in sorted(snap.queue.waiting, key=lambda w: w.waiting_since)[:max_waiting]:
            age = fmt_duration(snap.taken_at - w.waiting_since)
            lines.append(Content.assemble((f" {clip(w.name, 14)}", "bold"), (f"{age:>6} ", "$text-muted"),
                                          (w.reason, "$warning")))
    return Content("\n").join(lines)


def events_content(snap: Snapshot, limit: int) -> Content:
    lines = []
    for e in sorted(snap.events, key=lambda e: e.at, reverse=True)[:limit]:  # newest first
        style = "$error" if any(k in e.event_type for k in ("fail", "error", "alert", "hot")) else ""
        lines.append(Content.assemble((fmt_clock(e.at), "$text-muted"), " ", (clip(e.event_type, 14), "$accent"),
                                      " ", (e.message, style)))
    return Content("\n").join(lines) if lines else Content.styled("no events yet", "$text-muted")


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
