"""One task, live: state, attempts and output tail, updated while the screen is open.

Why live: a detail screen that copies the task once shows ``processing`` for a task that
finished seconds ago. Here the summary follows every new snapshot the app receives, and
(with a shared root) the task is re-read from the queue every ``RELOAD_S`` through
``engine.task_report`` -- the same report ``galaxy task show`` prints -- so the output tail
streams while the task runs (its worker's published partial output) and the result or the
error appears when it ends. Everything from the task is shown as text, never markup, and
its output without terminal escapes (``engine.textsafe.terminal_safe``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from engine.model import worker_at
from engine.snapshot import Snapshot, TaskView
from engine.task_report import TaskReport, TaskState, what_it_runs
from engine.textsafe import one_line, terminal_safe
from galaxy_tui.render import fmt_clock, fmt_duration

POLL_S = 0.5
RELOAD_S = 1.0
STATE_STYLE = {"running": "$accent bold", "complete": "$success bold", "failed": "$error bold",
               "queued": "$text-muted", "delayed": "$warning", "held": "$warning",
               "awaiting_approval": "$warning bold"}
OUTCOME_OK = ("ok", "running")


def _rows(rows: list[tuple[str, object]]) -> list[Content]:
    return [Content.assemble((f"{k:>10}  ", "$text-muted"), v if isinstance(v, Content) else str(v))
            for k, v in rows]


def view_content(view: TaskView, progress: str | None = None, now: float | None = None) -> Content:
    """The snapshot's view of the task (no shared root, or the queue does not have it);
    ``now`` (the snapshot's time) gives a running task its elapsed time."""
    dur = view.duration_s
    if dur is None and view.started_at is not None and (view.ended_at or now):
        dur = (view.ended_at or now or 0.0) - view.started_at
    state = Content.styled(view.status, STATE_STYLE.get(view.status, "bold"))
    lines = _rows([("task", view.task_id), ("name", view.name), ("class", view.task_class), ("state", state),
                   ("model", view.model or "-"), ("worker", worker_at(view.worker_id, view.rig)),
                   ("started", fmt_clock(view.started_at)), ("ended", fmt_clock(view.ended_at)),
                   ("duration", fmt_duration(dur)),
                   ("tokens/s", "-" if view.tokens_per_s is None else f"{view.tokens_per_s:.1f}"),
                   ("retries", str(view.retry_count)), ("error", one_line(view.error) or "-")])
    if progress:
        lines.append(Content.styled("output tail (live)", "bold"))
        lines.append(Content(terminal_safe(progress)))
    return Content("\n").join(lines)


def report_summary(r: TaskReport, now: float) -> Content:
    t = r.task
    running = r.state is TaskState.RUNNING
    dur = r.duration_s if r.duration_s is not None else (now - r.started_at if running and r.started_at else None)
    state = Content.styled(r.state.value + (" (live)" if r.output_live else ""),
                           STATE_STYLE.get(r.state.value, "bold"))
    return Content("\n").join(_rows([
        ("task", t.task_id), ("name", t.name), ("state", state), ("class", f"{t.task_class.value} ({t.type.value})"),
        ("model", t.model or "-"), ("worker", worker_at(r.worker_id, r.rig)), ("started", fmt_clock(r.started_at)),
        ("ended", fmt_clock(r.ended_at)), ("duration", fmt_duration(dur)),
        ("tokens/s", "-" if r.tokens_per_s is None else f"{r.tokens_per_s:.1f}"),
        ("retries", f"{t.retry_count} of {t.max_retries}"), ("error", one_line(t.error) or "-")]))


def report_details(r: TaskReport) -> Content:
    t = r.task
    lines = _rows([("runs", what_it_runs(t)), ("priority", t.priority), ("depends on", ", ".join(t.depends_on) or "-"),
                   ("created", fmt_clock(t.created_at)), ("timeout", fmt_duration(t.timeout_s)),
                   ("plan", t.plan or "-")])
    lines.append(Content.styled("attempts", "bold"))
    for a in t.attempts:
        lines.append(Content.assemble(f"  #{a.number} {worker_at(a.worker_id, a.rig)} {fmt_clock(a.started_at)} ",
                                      (a.outcome, "$success" if a.outcome in OUTCOME_OK else "$error"),
                                      f" rc={a.return_code}" if a.return_code is not None else "",
                                      (f"  {one_line(a.error)}" if a.error else "", "$error")))
    if not t.attempts:
        lines.append(Content.styled("  none yet", "$text-muted"))
    lines.append(Content.styled("output tail (live, streaming)" if r.output_live else "output tail", "bold"))
    lines.append(Content(terminal_safe(r.output_tail)) if r.output_tail else Content.styled(
        "  (no output yet)" if r.state is TaskState.RUNNING else "  -", "$text-muted"))
    return Content("\n").join(lines)


def find_view(snap: Snapshot, task_id: str) -> tuple[TaskView | None, str | None]:
    """The task in the snapshot (running first) and its worker's live partial output."""
    view = next((t for t in (*snap.running, *snap.failed, *snap.recent) if t.task_id == task_id), None)
    worker = next((w for w in snap.workers if w.current_task == task_id), None)
    if view is None and worker is not None:
        view = TaskView(task_id=task_id, name=worker.task_name or task_id, task_class=worker.task_class or "?",
                        status="running", worker_id=worker.worker_id, started_at=worker.task_started_at,
                        tokens_per_s=worker.tokens_per_s)
    if view is not None and worker is not None and view.model is None and worker.resident_model:
        view = replace(view, model=worker.resident_model)  # a running task needs what its card holds
    return view, worker.progress if worker is not None else None


class TaskDetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "close", "Close")]

    def __init__(self, view: TaskView, root: Path | None) -> None:
        super().__init__()
        self.view = view
        self.root = root
        self.progress: str | None = None
        self.report: TaskReport | None = None
        self._seen: Snapshot | None = None
        self._queue: Any = None
        self._loading = False
        self._closed = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Static(view_content(self.view), id="detail-summary")
            yield Static(Content.styled("loading task file…", "$text-muted"), id="detail-file")

    def on_mount(self) -> None:
        self._retitle()
        self._follow_snapshot()
        self.set_interval(POLL_S, self._follow_snapshot)
        if self.root is None:
            self.query_one("#detail-file", Static).update(
                Content.styled("(no shared root: snapshot view only)", "$text-muted"))
        else:
            self._reload()
            self.set_interval(RELOAD_S, self._reload)

    def _now(self) -> float:
        clock = getattr(self.app, "clock", None)
        return float(clock()) if callable(clock) else 0.0

    def _retitle(self) -> None:
        state = self.report.state.value if self.report else self.view.status
        self.query_one("#detail-body").border_title = f"task {self.view.task_id} · {state}"

    def _follow_snapshot(self) -> None:
        """A new snapshot: the task's state, times and live output as the supervisor sees them."""
        snap = getattr(self.app, "snapshot", None)
        if snap is None or snap is self._seen:
            return
        self._seen = snap
        view, progress = find_view(snap, self.view.task_id)
        if view is None or (view == self.view and progress == self.progress):
            return
        self.view, self.progress = view, progress
        if self.report is None:
            self.query_one("#detail-summary", Static).update(view_content(view, progress, snap.taken_at))
            self._retitle()

    def _reload(self) -> None:
        if not self._loading and not self._closed:
            self._loading = True
            self._load()

    @work(thread=True, group="task-detail")
    def _load(self) -> None:
        assert self.root is not None
        report, error = self._read_report(self.root)
        self.app.call_from_thread(self._loaded, report, error)

    def _read_report(self, root: Path) -> tuple[TaskReport | None, str | None]:
        """The queue is opened once per screen (its index then follows inotify, never relists)."""
        from engine.paths import RigPaths
        from engine.task_report import load_report

        paths = RigPaths(root)
        try:
            if self._queue is None:
                from engine.config import load_config, resolve_config_path
                from engine.store.open_queue import open_config_queue

                # the store galaxy.toml or $GALAXY_STORE names (a Redis cluster's task lives there)
                config = resolve_config_path(getattr(self.app, "config_path", None))  # attach --config
                self._queue = open_config_queue(load_config(config), paths, use_inotify=True)
            report = load_report(self._queue, paths, self.view.task_id)
        except (OSError, ValueError, RuntimeError) as exc:
            return None, f"reading task {self.view.task_id}: {exc}"
        if report is None:
            return None, "task not found in the queue (showing the snapshot's view)"
        return report, None

    def _loaded(self, report: TaskReport | None, error: str | None) -> None:
        self._loading = False
        if self._closed:
            self._close_queue()
            return
        if report is None:
            if self.report is None:
                self.query_one("#detail-file", Static).update(Content.styled(error or "", "$text-muted"))
            return
        self.report = report
        self.query_one("#detail-summary", Static).update(report_summary(report, self._now()))
        self.query_one("#detail-file", Static).update(report_details(report))
        self._retitle()

    def on_unmount(self) -> None:
        self._closed = True
        if not self._loading:  # else the read in flight closes it when it returns
            self._close_queue()

    def _close_queue(self) -> None:
        if self._queue is not None:
            self._queue.close()
            self._queue = None

    def action_close(self) -> None:
        self.dismiss(None)
