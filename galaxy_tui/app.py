"""The galaxy dashboard: snapshots in (from a SnapshotSource), commands out (to a CommandSink).

The app never talks to workers or GPUs itself and never blocks on I/O: the source is
polled in a worker thread; commands are tiny atomic file writes through the sink.
Quitting the dashboard leaves the rig running.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input

from engine.commands import CommandKind, CommandSink, default_source, make_command
from engine.snapshot import Snapshot, TaskView, WorkerView
from galaxy_tui import prefs
from galaxy_tui.actions import CANCELLABLE, STOPPED_STATES, unload_plan
from galaxy_tui.escalation_keys import EscalationKeys
from galaxy_tui.reader import SourceReader
from galaxy_tui.screens.confirm import ConfirmScreen, ReasonScreen
from galaxy_tui.source import SnapshotReading, SnapshotSource, staleness
from galaxy_tui.theming import DEFAULT_THEME, STYLESHEET, load_themes
from galaxy_tui.widgets.escalations import EscalationsTable, panel_title, pending_rows
from galaxy_tui.widgets.events import EventsPanel
from galaxy_tui.widgets.gpu_panel import GpuPanel
from galaxy_tui.widgets.panels import TasksTable, nodes_content
from galaxy_tui.widgets.queue_panel import QueuePanel
from galaxy_tui.widgets.status import AlertBanner, ApprovalBanner, TopBar
from galaxy_tui.widgets.text_panel import TextPanel

POLL_INTERVAL_S = 0.5
MAIN_ONLY = frozenset({"pause_resume", "drain", "start_restart", "unload", "cancel_task", "retry", "retry_all",
                       "approve", "deny", "detail"})
_UNSET = object()
EVENT_LINES = 3


def _is_open(screen: object, module: str, name: str) -> bool:
    """``isinstance`` against a screen class imported on first use (the task detail, review and
    escalations screens are not on the first frame): while its module is not imported, no such
    screen can be open."""
    mod = sys.modules.get(module)
    return mod is not None and isinstance(screen, getattr(mod, name))


def _show(widget: Widget, visible: bool) -> None:
    """Touch ``display`` only on a change: each assignment costs a layout pass."""
    if widget.display != visible:
        widget.display = visible


class GalaxyApp(EscalationKeys):
    CSS_PATH = STYLESHEET
    TITLE = "galaxy"

    # The footer shows only what must fit 80 columns (review, help, quit, the palette); every
    # key is in the help screen and, by name, in the command palette (ctrl+p).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pause_resume", "Pause", show=False),
        Binding("x", "drain", "Drain", show=False),
        Binding("s", "start_restart", "Start/restart", show=False),
        Binding("u", "unload", "Unload", show=False),
        Binding("c", "cancel_task", "Cancel task", show=False),
        Binding("r", "retry", "Retry", show=False),
        Binding("R", "retry_all", "Retry all", show=False),
        Binding("a", "approve", "Approve", show=False),
        Binding("d", "deny", "Deny", show=False),
        # priority: from modal screens too (GPU detail, task detail, help); not while typing (check_action)
        Binding("e", "review_pending", "Approvals", priority=True),
        Binding("E", "escalations", "Escalations", show=False),
        Binding("enter", "detail", "Detail", show=False),
        Binding("slash", "filter_tasks", "Filter tasks", show=False),
        Binding("l", "events", "Events", show=False),
        Binding("t", "next_theme", "Theme", show=False),
        Binding("g", "next_rig", "Rig filter", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, source: SnapshotSource, sink: CommandSink, *, read_only: bool = False,
                 clock: Callable[[], float] = time.time, root: Path | None = None,
                 poll_interval: float = POLL_INTERVAL_S, theme: str | None = None,
                 prefs_path: Path | None = None, route: Callable[[str], CommandSink] | None = None,
                 home_rig: str | None = None, config_path: Path | None = None) -> None:
        """``route``: the command channel of a named rig, in a cluster view (a worker's commands go to
        its own rig's supervisor); ``home_rig``: this host's rig there (its history is on this disk);
        ``config_path``: the galaxy.toml the dashboard was started with (``--config``): the Tasks view
        and the task detail open the queue of the store it names (None: located as every command does)."""
        super().__init__()
        self.source = source
        self.sink = sink
        self.route = route
        self.home_rig = home_rig
        self.config_path = config_path
        self.read_only = read_only
        self.clock = clock
        self.root = root
        self.poll_interval = poll_interval
        self.snapshot: Snapshot | None = None
        self.supervisor_alive: bool | None = None
        self.source_error: str | None = None
        self.stale_since: float | None = None
        self.sent_ids: set[str] = set()
        self.decided: dict[str, str] = {}  # escalation id -> "approve"/"deny" sent from here, until refused
        self.first_frame_at: float | None = None
        self._reader: SourceReader | None = None  # polls the source in its thread: poll_source
        self._last_inputs: dict[str, object] = {}
        themes = load_themes()
        self._themes = [t.name for t in themes]
        for t in themes:
            self.register_theme(t)
        self.prefs_path = prefs_path  # None: nothing remembered (tests, screenshots)
        wanted = theme or prefs.load_theme(prefs_path) or DEFAULT_THEME
        self.theme = wanted if wanted in self._themes else DEFAULT_THEME
        self.origin = default_source("tui")

    # ---------- layout ----------
    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        yield ApprovalBanner(id="approvals")
        yield AlertBanner(id="alerts")
        yield GpuPanel(id="gpus")
        with Horizontal(id="lower"):
            yield TasksTable(id="tasks")
            with Vertical(id="side"):
                yield QueuePanel(id="queue")
                yield EscalationsTable(id="escalations")
                yield TextPanel(id="nodes")
        yield TextPanel(id="task-reason")
        yield EventsPanel(id="events")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for wid, title in (("#gpus", "GPUs"), ("#tasks", "Tasks"), ("#queue", "Queue"),
                           ("#escalations", "Escalations"), ("#nodes", "Nodes"), ("#events", "Events")):
            self.query_one(wid).border_title = title
        for wid in ("#escalations", "#nodes", "#task-reason"):
            self.query_one(wid).display = False
        self.query_one(AlertBanner).display = False
        self.query_one(ApprovalBanner).display = False
        self.query_one(TopBar).show(None, stale_since=None, read_only=self.read_only, error=None)
        self.query_one(GpuPanel).focus()
        self.set_interval(self.poll_interval, self.poll_source)
        self.poll_source()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that act on the main screen's selection work there only (not under a review or dialog)."""
        if action in MAIN_ONLY and len(self.screen_stack) > 1:
            return False
        if action != "review_pending":
            return True
        # On the review screen n walks the pending ones; over a question e must not jump away;
        # in a text field e is a letter.
        return not (isinstance(self.screen, (ConfirmScreen, ReasonScreen))
                    or _is_open(self.screen, "galaxy_tui.screens.review", "ReviewScreen")
                    or isinstance(self.focused, Input)
                    or _is_open(self.focused, "textual.widgets._text_area", "TextArea"))  # not imported to start

    def on_resize(self) -> None:
        self.screen.set_class(self.size.height < 30, "-short")

    # ---------- data in ----------
    def poll_source(self) -> None:
        """Ask the reader thread for a poll (one in flight at most); re-check staleness either way."""
        self._refresh_staleness()
        if self._reader is None:
            loop = asyncio.get_running_loop()
            self._reader = SourceReader(self.source, lambda r: loop.call_soon_threadsafe(self._after_read, r))
        self._reader.kick()

    def on_unmount(self) -> None:
        if self._reader is not None:
            self._reader.stop()

    def _after_read(self, reading: SnapshotReading) -> None:
        if self._reader is not None and not self._reader.stopped:
            self.apply_reading(reading)

    def apply_reading(self, reading: SnapshotReading) -> None:
        self.supervisor_alive = reading.supervisor_alive
        self.source_error = reading.error
        if reading.snapshot is not None:
            self.snapshot = reading.snapshot
            self._render_snapshot(reading.snapshot)
        self._refresh_staleness(force=True)

    def _refresh_staleness(self, force: bool = False) -> None:
        since = staleness(self.snapshot, self.clock(), self.supervisor_alive)
        if force or since != self.stale_since:
            if since != self.stale_since:
                self.screen.set_class(since is not None, "-stale")
            self.stale_since = since
            self.query_one(TopBar).show(self.snapshot, stale_since=since, read_only=self.read_only,
                                        error=self.source_error)

    def _changed(self, name: str, inputs: object) -> bool:
        """Skip rebuilding a panel whose inputs are equal to last time (most ticks change little)."""
        if self._last_inputs.get(name, _UNSET) == inputs:
            return False
        self._last_inputs[name] = inputs
        return True

    def _render_snapshot(self, snap: Snapshot) -> None:
        if self._changed("alerts", snap.alerts):
            self.query_one(AlertBanner).show(snap)
        self.query_one(GpuPanel).show(snap)
        self.query_one(TasksTable).show(snap)
        if self._changed("queue", (snap.queue, int(snap.taken_at))):
            self.query_one(QueuePanel).show(snap)
        if self._changed("escalations", (snap.escalations, int(snap.taken_at))):
            self.query_one(ApprovalBanner).show(snap)
            esc = self.query_one(EscalationsTable)
            rows = pending_rows(snap)
            _show(esc, bool(rows))
            esc.set_rows(rows)
            esc.border_title = panel_title(snap)
        self._show_worker_reason()
        for screen in self.screen_stack[1:]:
            if (_is_open(screen, "galaxy_tui.screens.review", "ReviewScreen")
                    or _is_open(screen, "galaxy_tui.screens.escalations", "EscalationsScreen")):
                getattr(screen, "on_snapshot")(snap)  # noqa: B009 - the class is not imported here
        nodes = self.query_one("#nodes", TextPanel)
        _show(nodes, bool(snap.nodes))
        if snap.nodes and self._changed("nodes", snap.nodes):
            nodes.update(nodes_content(snap))
        if self._changed("events", snap.events):
            self.query_one(EventsPanel).show(snap.events)
        self._report_acks(snap)
        if self.first_frame_at is None:
            self.first_frame_at = time.perf_counter()

    def _show_worker_reason(self) -> None:
        """The selected card's worker state reason (why it is fatal, paused, backing off) on the
        GPU panel's bottom edge: one line narrow enough for 80 columns, never cut sideways."""
        view = self.selected_worker()
        text = ""
        if view is not None and view.state_reason:
            wid, reason = view.worker_id, view.state_reason
            text = f"{wid}: {reason}" if reason.startswith(view.state) else f"{wid} {view.state}: {reason}"
        panel = self.query_one(GpuPanel)
        if self._changed("worker-reason", text):
            panel.border_subtitle = Content(text)

    @on(GpuPanel.Selected)
    def _gpu_moved(self) -> None:
        self._show_worker_reason()

    @on(DataTable.RowHighlighted, "#tasks")
    def _task_moved(self) -> None:
        """The selected task's failure reason, whole and full-width under the Tasks panel (its
        column is off-screen at 80 columns); wraps to three lines, never scrolls sideways."""
        task = self.selected_task()
        strip = self.query_one("#task-reason", TextPanel)
        _show(strip, bool(task is not None and task.error))
        if task is not None and task.error:
            strip.update(Content.assemble((f"{task.status}: ", "$error bold"), (task.error, "$error")))

    @on(DataTable.RowSelected, "#escalations")
    def _escalation_chosen(self) -> None:
        esc = self.selected_escalation()
        if esc is not None:
            self.open_review(esc.escalation_id)

    def _report_acks(self, snap: Snapshot) -> None:
        for ack in snap.acks:
            if ack.command_id in self.sent_ids:
                self.sent_ids.discard(ack.command_id)
                if ack.kind in ("approve", "deny") and ack.outcome != "ok" and ack.target:
                    self.decided.pop(ack.target, None)  # refused (budget, expired): the operator may try again
                severity: SeverityLevel = "information" if ack.outcome == "ok" else "error"
                self.notify(f"{ack.kind} {ack.target or ''}: {ack.outcome} {ack.message}", severity=severity,
                            markup=False)

    # ---------- selection ----------
    def selected_worker(self) -> WorkerView | None:
        """The selected card's worker (in a cluster view, ``rig`` says which rig it runs on)."""
        card = self.query_one(GpuPanel).current
        return card.worker if card else None

    def selected_worker_id(self) -> str | None:
        view = self.selected_worker()
        return view.worker_id if view else None

    def selected_task(self) -> TaskView | None:
        key = self.query_one(TasksTable).selected_key
        if key is None or self.snapshot is None:
            return None
        for t in (*self.snapshot.running, *self.snapshot.failed, *self.snapshot.recent):
            if t.task_id == key:
                return t
        return self.query_one(TasksTable).selected_view()  # a queued row (listed from the queue)

    # ---------- commands out ----------
    def supervisor_absent(self, rig: str | None = None) -> bool:
        """STALE (or never heard from): a command would wait for a future supervisor. ``rig``: another
        rig of a cluster view, STALE when its supervisor stopped publishing."""
        if rig is not None and self.snapshot is not None and rig != self.snapshot.rig:
            return next((r.stale for r in self.snapshot.rigs if r.rig == rig), True)
        return self.snapshot is None or self.stale_since is not None or self.supervisor_alive is False

    def command_rig(self, rig: str | None = None) -> str | None:
        """The rig a command goes to in a cluster view (None: the one rig's channel): a worker's own
        rig, else the rig whose snapshot the view shows (any live supervisor applies queue commands
        and escalation decisions: they act on the shared store)."""
        if self.route is None or self.snapshot is None or len(self.snapshot.rigs) < 2:
            return None
        return rig or self.snapshot.rig

    def send(self, kind: CommandKind, target: str | None = None, *, on_sent: Callable[[], None] | None = None,
             rig: str | None = None, **args: object) -> None:
        """Send one command (to ``rig``'s supervisor in a cluster view, see ``command_rig``). Read-only
        says what it would send; with no live supervisor it asks first (Cancel focused), as the CLI
        warns: the command would apply to the next supervisor."""
        rig = self.command_rig(rig)
        label = f"{kind.value} {target or ''}".strip() + (f" on rig {rig}" if rig else "")
        if self.read_only:
            self.notify(f"read-only: would send {label}", severity="warning", markup=False)
            return
        if self.supervisor_absent(rig):
            def done(ok: bool | None) -> None:
                if ok:
                    self._send_now(kind, target, label, args, on_sent, rig)
                else:
                    self.notify(f"not sent: {label}", severity="information", markup=False)
            self.push_screen(ConfirmScreen(f"No supervisor is running; send anyway?\n{label} would wait in the "
                                           "commands folder and apply when a supervisor starts.", "Send anyway"),
                             done)
            return
        self._send_now(kind, target, label, args, on_sent, rig)

    def _send_now(self, kind: CommandKind, target: str | None, label: str, args: dict[str, object],
                  on_sent: Callable[[], None] | None = None, rig: str | None = None) -> None:
        cmd = make_command(kind, target, source=self.origin, now=self.clock(), **args)
        try:
            (self.route(rig) if rig is not None and self.route is not None else self.sink).send(cmd)
        except (OSError, ValueError) as exc:  # ValueError: engine.ids.InvalidId, a target that is not a valid id
            self.notify(f"could not send {label}: {exc}", severity="error", markup=False)
            return
        self.sent_ids.add(cmd.command_id)
        if on_sent is not None:
            on_sent()
        self.notify(f"sent {label}", markup=False)

    def confirm(self, question: str, label: str, then: Callable[[], None]) -> None:
        """Ask (Cancel focused); run ``then`` only on an explicit yes."""
        def done(ok: bool | None) -> None:
            if ok:
                then()
        self.push_screen(ConfirmScreen(question, label), done)

    def _need_worker(self) -> WorkerView | None:
        view = self.selected_worker()
        if view is None:
            self.notify("select a GPU card with a worker first", severity="warning")
        return view

    def action_pause_resume(self) -> None:
        view = self._need_worker()
        if view is None:
            return
        wid = view.worker_id
        if view.state in STOPPED_STATES:
            self.notify(f"{wid} is {view.state}: press s to start it", severity="warning", markup=False)
            return
        self.send(CommandKind.RESUME if view.state == "paused" else CommandKind.PAUSE, wid, rig=view.rig)

    def action_drain(self) -> None:
        view = self._need_worker()
        if view is not None:
            self.send(CommandKind.DRAIN, view.worker_id, rig=view.rig)

    def action_start_restart(self) -> None:
        """A stopped (drained) or fatal worker starts again (``resume`` spawns it: states.py);
        a live one is restarted after asking, saying what happens to its task."""
        view = self._need_worker()
        if view is None:
            return
        wid = view.worker_id
        if view.state in STOPPED_STATES:
            self.send(CommandKind.RESUME, wid, rig=view.rig)
            return
        task = view.task_name or view.current_task
        what = (f"Its running task {task} is interrupted and handed back to the queue." if task
                else "It runs no task now.")
        self.confirm(f"Restart worker {wid} ({view.state})? Its process is stopped and started again.\n{what}",
                     "Restart", lambda: self.send(CommandKind.RESTART, wid, rig=view.rig))

    def action_unload(self) -> None:
        view = self._need_worker()
        if view is None:
            return
        wid = view.worker_id
        card = self.query_one(GpuPanel).current
        plan = unload_plan(view, card.gpu if card else None)
        if plan.nothing:
            self.notify(f"{wid}: {plan.text}; nothing sent", severity="information", markup=False)
            return
        if plan.question is None:
            self.send(CommandKind.UNLOAD, wid, rig=view.rig)
            return
        self.confirm(plan.question, "Unload", lambda: self.send(CommandKind.UNLOAD, wid, rig=view.rig))

    def action_cancel_task(self) -> None:
        task = self.selected_task()
        if isinstance(self.focused, GpuPanel) or task is None:
            view = self.selected_worker()
            if view is not None and view.current_task:
                task = TaskView(task_id=view.current_task, name=view.task_name or view.current_task,
                                task_class=view.task_class or "?", status="running", worker_id=view.worker_id)
        if task is None or task.status not in CANCELLABLE:
            self.notify("select a running or waiting task (Tasks, or a busy GPU) first", severity="warning")
            return
        where = f" on {task.worker_id}: it is stopped mid-run" if task.worker_id and task.status in (
            "running", "processing") else ""
        # a running task is stopped by the supervisor of the rig whose worker runs it
        runner = next((w for w in self.snapshot.workers if w.current_task == task.task_id), None) \
            if self.snapshot else None
        self.confirm(f"Cancel task {task.name} ({task.task_id}){where}?\nIt will not run again unless retried.",
                     "Cancel task", lambda: self.send(CommandKind.CANCEL, task.task_id,
                                                      rig=runner.rig if runner else None))

    def action_retry(self) -> None:
        task = self.selected_task()
        if task is None or task.status not in ("failed", "dead"):
            self.notify("select a failed task in Tasks first", severity="warning")
            return
        self.send(CommandKind.RETRY, task.task_id)

    def failed_count(self) -> int:
        if self.snapshot is None:
            return 0
        counted = sum(self.snapshot.queue.counts.get("failed", {}).values())
        return counted or len(self.snapshot.failed)

    def action_retry_all(self) -> None:
        n = self.failed_count()
        if n == 0:
            self.notify("no failed tasks", severity="information")
            return
        self.confirm(f"Retry all {n} failed tasks?", f"Retry {n}", lambda: self.send(CommandKind.RETRY_ALL_FAILED))

    def action_detail(self) -> None:
        card = self.query_one(GpuPanel).current if isinstance(self.focused, GpuPanel) else None
        if card is not None and card.gpu is not None:  # Enter on a GPU card: its charts and processes (H8)
            from galaxy_tui.screens.gpu_detail import GpuDetailScreen

            rig = card.gpu.rig
            here = rig is None or rig == self.home_rig  # another host's history file is on its disk
            self.push_screen(GpuDetailScreen(card.gpu.index, self.root if here else None, rig=rig))
            return
        task = self.selected_task()
        if isinstance(self.focused, GpuPanel) or task is None:
            view = self.selected_worker()
            wid = view.worker_id if view else None
            if view is not None and view.current_task and self.snapshot is not None:
                task = next((t for t in self.snapshot.running if t.task_id == view.current_task), None) or TaskView(
                    task_id=view.current_task, name=view.task_name or view.current_task,
                    task_class=view.task_class or "?", status="running", worker_id=wid,
                    started_at=view.task_started_at, tokens_per_s=view.tokens_per_s)
        if task is None:
            self.notify("select a task (or a busy GPU) first", severity="warning")
            return
        self.open_task(task)

    def open_task(self, task: TaskView) -> None:
        from galaxy_tui.screens.detail import TaskDetailScreen  # not on the first frame: imported when opened

        self.push_screen(TaskDetailScreen(task, self.root))

    @on(DataTable.RowSelected, "#tasks")
    def _task_chosen(self) -> None:
        task = self.selected_task()
        if task is not None:
            self.open_task(task)

    def action_next_theme(self) -> None:
        names = self._themes
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]
        problem = prefs.save_theme(self.prefs_path, self.theme)
        self.notify(problem or f"theme: {self.theme}", severity="warning" if problem else "information",
                    markup=False)

    def action_next_rig(self) -> None:
        """`g`: in a cluster view, only one rig's GPU cards, the next rig, then every rig again."""
        rigs = [r.rig for r in self.snapshot.rigs] if self.snapshot is not None else []
        if len(rigs) < 2:
            self.notify("one rig: nothing to filter (several rigs share a Redis store)", severity="information")
            return
        panel = self.query_one(GpuPanel)
        at = rigs.index(panel.rig_filter) + 1 if panel.rig_filter in rigs else 0
        panel.rig_filter = rigs[at] if at < len(rigs) else None
        self.notify(f"GPUs of rig {panel.rig_filter}" if panel.rig_filter else "GPUs of every rig", markup=False)

    def action_filter_tasks(self) -> None:
        """`/`: filter the Tasks view by name, class, state, worker or model."""
        if len(self.screen_stack) == 1:
            tasks = self.query_one(TasksTable)
            tasks.focus()
            tasks.ask_filter()

    def action_events(self) -> None:
        """`l`: the Events view full-screen."""
        from galaxy_tui.screens.events import EventsScreen

        if not isinstance(self.screen, EventsScreen):
            self.push_screen(EventsScreen(show_all=self.query_one(EventsPanel).show_all))

    def action_help(self) -> None:
        # Markdown is slow to import; not needed to start
        from galaxy_tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        ours = [
            ("Pause/resume worker", "Pause or resume the selected worker (p)", self.action_pause_resume),
            ("Drain worker", "Finish the current task, then take no more (x)", self.action_drain),
            ("Start/restart worker", "Start a stopped or fatal worker; restart a live one, after asking (s)",
             self.action_start_restart),
            ("Force-unload model", "Unload the selected worker's model; says what happens first (u)",
             self.action_unload),
            ("Cancel task", "Cancel the selected task (or the selected GPU's), after asking (c)",
             self.action_cancel_task),
            ("Retry failed task", "Retry the selected failed task (r)", self.action_retry),
            ("Retry all failed", "Retry every failed task, after asking (R)", self.action_retry_all),
            ("Review pending approval", "Full-screen review of the oldest pending escalation (e)",
             self.action_review_pending),
            ("All escalations", "Pending and decided escalations, on two tabs (E)", self.action_escalations),
            ("Approve escalation", "Let the selected escalation leave the rig (a)", self.action_approve),
            ("Deny escalation", "Refuse the selected escalation, with a reason (d)", self.action_deny),
            ("Task detail", "All fields, attempts and output of a task (enter)", self.action_detail),
            ("Rig filter", "Cluster: one rig's GPU cards, the next, then every rig (g)", self.action_next_rig),
            ("Next galaxy theme", "Cycle galaxy-dark / high-contrast / light (t)", self.action_next_theme),
            ("Filter tasks", "Tasks by name, class, state, worker or model (/)", self.action_filter_tasks),
            ("Events full-screen", "Every recent event, one line each (l)", self.action_events),
            ("Dashboard help", "Keys and what they send (?)", self.action_help),
        ]
        for title, help_text, callback in ours:
            yield SystemCommand(title, help_text, callback)
