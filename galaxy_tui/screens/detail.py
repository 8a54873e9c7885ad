"""One task, all of it: fields, attempts and output tail, loaded off the UI thread."""

from __future__ import annotations

import json
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from engine.model import Task
from engine.paths import RigPaths
from engine.snapshot import TaskView
from galaxy_tui.render import fmt_clock, fmt_duration

OUTPUT_TAIL_CHARS = 2000


def load_task(root: Path, task_id: str) -> tuple[Task | None, str | None]:
    """The task as the queue holds it now (engine's FileQueue lookup); runs in a worker thread."""
    from engine.queue.filequeue import FileQueue

    try:
        queue = FileQueue(RigPaths(root), use_inotify=False)
    except OSError as exc:
        return None, f"cannot open the queue at {root}: {exc}"
    try:
        task = queue.get(task_id)
    except (OSError, ValueError) as exc:
        return None, f"reading task {task_id}: {exc}"
    finally:
        queue.close()
    if task is None:
        return None, "task not found in the queue (showing the snapshot's view)"
    return task, None


def view_content(view: TaskView) -> Content:
    rows = [("task", view.task_id), ("name", view.name), ("class", view.task_class), ("status", view.status),
            ("worker", view.worker_id or "-"), ("started", fmt_clock(view.started_at)),
            ("ended", fmt_clock(view.ended_at)), ("duration", fmt_duration(view.duration_s)),
            ("tokens/s", "-" if view.tokens_per_s is None else f"{view.tokens_per_s:.1f}"),
            ("retries", str(view.retry_count)), ("error", view.error or "-")]
    return Content("\n").join(Content.assemble((f"{k:>10}  ", "$text-muted"), v) for k, v in rows)


def task_content(task: Task) -> Content:
    lines = [Content.assemble((f"{k:>10}  ", "$text-muted"), str(v)) for k, v in (
        ("type", task.type.value), ("command", task.command or "-"), ("model", task.model or "-"),
        ("priority", task.priority), ("depends on", ", ".join(task.depends_on) or "-"),
        ("created", fmt_clock(task.created_at)), ("max retries", task.max_retries),
        ("timeout", fmt_duration(task.timeout_s)), ("plan", task.plan or "-"))]
    lines.append(Content.styled("attempts", "bold"))
    for a in task.attempts:
        lines.append(Content.assemble(f"  #{a.number} {a.worker_id} {fmt_clock(a.started_at)} ",
                                      (a.outcome, "$error" if a.outcome not in ("ok", "running") else "$success"),
                                      f" rc={a.return_code}" if a.return_code is not None else "",
                                      (f"  {a.error}" if a.error else "", "$error")))
    if not task.attempts:
        lines.append(Content.styled("  none yet", "$text-muted"))
    out = ""
    if task.result:
        out = str(task.result.get("output") or task.result.get("text") or json.dumps(task.result, indent=1))
    elif task.error:
        out = task.error
    lines.append(Content.styled("output tail", "bold"))
    lines.append(Content(out[-OUTPUT_TAIL_CHARS:] or "-"))
    return Content("\n").join(lines)


class TaskDetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "close", "Close")]

    def __init__(self, view: TaskView, root: Path | None) -> None:
        super().__init__()
        self.view = view
        self.root = root

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Static(view_content(self.view), id="detail-summary")
            yield Static(Content.styled("loading task file…", "$text-muted"), id="detail-file")

    def on_mount(self) -> None:
        self.query_one("#detail-body").border_title = f"task {self.view.task_id}"
        if self.root is None:
            self.query_one("#detail-file", Static).update(Content.styled("(no shared root: snapshot view only)",
                                                                         "$text-muted"))
        else:
            self._load()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        assert self.root is not None
        task, error = load_task(self.root, self.view.task_id)
        body = task_content(task) if task else Content.styled(error or "", "$text-muted")
        self.app.call_from_thread(self.query_one("#detail-file", Static).update, body)

    def action_close(self) -> None:
        self.dismiss(None)
