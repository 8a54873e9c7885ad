"""Event-log lines as ``EventView``s: one conversion for the snapshot and the dashboard.

Why: the dashboard's Events view shows each event's task and worker in their own columns,
so the message carries everything else the line says (``duration_ms=...``, ``model=...``,
``error=...``), most telling fields first. The supervisor's snapshot tail and the
full-screen Events view (which reads more of the log) use this same conversion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.events import tail_events
from engine.model import parse_time
from engine.snapshot import EventView
from engine.store.channels import EventStream

FIRST = ("error", "reason", "duration_ms", "tokens_generated", "model")
NOT_MESSAGE = frozenset({"timestamp", "event_type", "task_id", "worker_id", "rig"})  # rig: with the worker


def _says_nothing(rec: dict[str, Any], key: str) -> bool:
    value = rec.get(key)
    if value in (None, "", [], {}):
        return True
    if key == "retry_count":
        return bool(value == 0)  # a first try is the usual case
    # a worker's own GPU is stamped on every line it writes; the worker column already says it
    return key == "gpu_id" and isinstance(rec.get("worker_id"), str) and rec["worker_id"] != "supervisor"


def event_message(rec: dict[str, Any]) -> str:
    """Every field but time, type, task and worker, as ``key=value``; ``error`` and ``reason``
    first. Empty when the event says nothing more."""
    keys = [k for k in FIRST if k in rec] + sorted(k for k in rec if k not in NOT_MESSAGE and k not in FIRST)
    return " ".join(f"{k}={rec[k]}" for k in keys if not _says_nothing(rec, k))


def event_view(rec: dict[str, Any]) -> EventView | None:
    """None for a line without a readable timestamp."""
    try:
        at = parse_time(rec.get("timestamp"), "timestamp") or 0.0
    except ValueError:
        return None
    task_id, worker_id, rig = rec.get("task_id"), rec.get("worker_id"), rec.get("rig")
    return EventView(at=at, event_type=str(rec.get("event_type", "?")), message=event_message(rec),
                     task_id=task_id if isinstance(task_id, str) else None,
                     worker_id=worker_id if isinstance(worker_id, str) else None,
                     rig=rig if isinstance(rig, str) and rig else None)


def stream_event_views(stream: EventStream, n: int) -> list[EventView]:
    """The newest ``n`` events of the store's event stream as views, oldest first."""
    return [v for v in (event_view(rec) for rec in stream.tail(n)) if v is not None]


def tail_event_views(path: Path, n: int, *, max_bytes: int = 64_000) -> list[EventView]:
    """The newest ``n`` events of the log, oldest first, reading at most ``max_bytes``."""
    return [v for v in (event_view(rec) for rec in tail_events(path, n, max_bytes=max_bytes)) if v is not None]
