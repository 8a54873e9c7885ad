"""Builders for the Tasks/Events tests: a busy snapshot with many rows, markup-laden names,
events with fields and multi-line errors, and a real queue with queued tasks (not a test module)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tuikit import canned

from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.snapshot import EventView, Snapshot, TaskView

T0 = 1_795_000_000.0
HOSTILE = ("job[intro]", "boom[a]", "[bold]loud[/]", "[link=http://x]click[/link]", "rocket 🚀 [/]")


def many_recent(n: int, *, first: int = 0, at: float = T0) -> tuple[TaskView, ...]:
    """``n`` finished tasks, newest first, numbered from ``first``."""
    return tuple(TaskView(task_id=f"t-done-{i:03d}", name=f"done-{i:03d}", task_class=("llm", "cpu", "script")[i % 3],
                          status="done", worker_id=f"w{i % 4}", started_at=at - 100 - i, ended_at=at - 90 - i,
                          duration_s=10.0 + i % 7, model="qwen2.5:3b" if i % 3 == 0 else None)
                 for i in range(first + n - 1, first - 1, -1))


def busy(n_recent: int = 60, **changes: object) -> Snapshot:
    snap = canned("busy5")
    return replace(snap, recent=many_recent(n_recent) + snap.recent, **changes)  # type: ignore[arg-type]


def hostile_names(snap: Snapshot) -> Snapshot:
    rows = tuple(TaskView(task_id=f"b.hostile-{i}", name=name, task_class="llm", status="failed" if i % 2 else "done",
                          worker_id="w1", error="[red]not markup[/red]" if i % 2 else None)
                 for i, name in enumerate(HOSTILE))
    return replace(snap, recent=rows[::2] + snap.recent, failed=rows[1::2] + snap.failed)


EVENTS = (
    EventView(at=T0 - 50, event_type="task_claimed", message="t-a on w1", task_id="t-a", worker_id="w1"),
    EventView(at=T0 - 49, event_type="task_started", message="t-a on w1", task_id="t-a", worker_id="w1"),
    EventView(at=T0 - 30, event_type="task_failed", task_id="b.boom-a", worker_id="w3",
              message="duration_ms=1200 error=exit code 1: Traceback (most recent call last):\n"
                      "  File \"run.py\", line 3, in <module>\n\nValueError: [bold]bad input[/]"),
    EventView(at=T0 - 20, event_type="task_done", message="duration_ms=8000 tokens_generated=420",
              task_id="b.job-intro", worker_id="w0"),
    EventView(at=T0 - 10, event_type="model_loaded", message="qwen2.5:7b resident on GPU 5", task_id=None,
              worker_id="w5"),
)


def with_events(snap: Snapshot) -> Snapshot:
    return replace(snap, events=EVENTS)


def queue_with(root: Path, n: int, *, at: float = T0 - 600) -> list[str]:
    """A real queue under ``root`` with ``n`` queued cpu tasks (llm every 5th), enqueued at fixed times."""
    q = FileQueue(RigPaths(root), use_inotify=False)
    tasks = [Task(task_id=f"b.q{i:05d}", name=f"q{i:05d}", command="true",
                  task_class=TaskClass.LLM if i % 5 == 0 else TaskClass.CPU,
                  model="llama3.2:3b" if i % 5 == 0 else None, created_at=at) for i in range(n)]
    for i, t in enumerate(tasks):
        q.submit([t], now=at + i)
    q.close()
    return [t.task_id for t in tasks]
