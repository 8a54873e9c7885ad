"""The Tasks view: running, failed, recent and queued tasks; filter (``/``), sort, queued pages.

Live rows come from the snapshot. Queued rows come from a ``QueuedSource`` (the engine's
``QueueLister``: names only, inotify-fed, so a page is cheap at depth 20,000), read in a
worker thread at most every ``QUEUED_REFRESH_S`` and only a page at a time. The table never
moves the view by itself (``KeyedTable``); every text cell is data, never markup.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label
from textual.widgets.data_table import ColumnKey

from engine.model import worker_at
from engine.snapshot import Snapshot, TaskView
from engine.textsafe import terminal_safe
from galaxy_tui.render import clip, fmt_duration, fmt_rate
from galaxy_tui.widgets.tables import KeyedTable, Row

if TYPE_CHECKING:  # the listing (and the queue index under it) is imported by the lister's thread
    from engine.queue.listing import QueuedPage, QueuedRow

QUEUED_PAGE = 100
QUEUED_REFRESH_S = 2.0
STATUS_STYLE = {"running": "$accent bold", "processing": "$accent bold", "done": "$success",
                "complete": "$success", "failed": "$error bold", "dead": "$error bold", "queued": "$text-muted",
                "awaiting_approval": "$warning bold"}
STATUS_SHORT = {"processing": "running", "complete": "done", "cancelled": "cancel", "awaiting_approval": "await"}
GROUP_ORDER = {"running": 0, "failed": 1, "recent": 2, "queued": 3}
SORTABLE = ("status", "name", "class", "worker", "dur", "tps")
NAME_W, MIN_NAME_W = 20, 12  # the task column; it gives way down to MIN_NAME_W on a narrow screen
WORKER_W, MAX_WORKER_W, WORKER_CELL = 6, 14, 3  # the worker column: gpu0; wider for gpu0@lab in a cluster
DETAIL_W, MIN_DETAIL_W = 60, 8  # the detail column takes what is left
WANT_DETAIL_W = 24  # below this much room for the detail, the task column gives way


class QueuedSource(Protocol):
    """Where queued rows come from: ``engine.queue.listing.QueueLister`` or a test double."""

    def page(self, offset: int = 0, limit: int = QUEUED_PAGE, text: str = "") -> QueuedPage: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TaskEntry:
    """One row of the Tasks view, with what sorting and filtering need."""

    key: str
    cells: tuple[object, ...]
    group: int  # GROUP_ORDER: the default order
    sort: dict[str, Any]  # column key -> comparable value
    haystack: str  # lower-case name, id, class, state, worker and model: what `/` searches
    view: TaskView
    detail: str = ""  # the last column's text in full (cut to the column's width when shown)
    detail_style: str = "$text-muted"

    def fitted(self, name_w: int, detail_w: int) -> tuple[object, ...]:
        """The cells with the name and detail cut (with an ellipsis) to the columns' widths."""
        if (name_w, detail_w) == (NAME_W, DETAIL_W):
            return self.cells
        return (self.cells[0], clip(self.view.name, name_w).rstrip(), *self.cells[2:6],
                Content.styled(clip(self.detail, detail_w).rstrip(), self.detail_style))


def matches(entry: TaskEntry, text: str) -> bool:
    """Every whitespace-separated word of ``text`` occurs in the row's name, id, class, state,
    worker or model (case-insensitive)."""
    return all(word in entry.haystack for word in text.lower().split())


def _entry(t: TaskView, taken_at: float, kind: str, progress: str | None = None,
           detail: str | None = None) -> TaskEntry:
    if t.duration_s is not None:
        dur: float | None = t.duration_s
    elif t.started_at:
        dur = (t.ended_at or taken_at) - t.started_at
    else:
        dur = None
    shown = STATUS_SHORT.get(t.status, t.status)
    status = Content.styled(shown, STATUS_STYLE.get(t.status, STATUS_STYLE.get(shown, "")))
    if detail is None:
        detail = t.error if kind == "failed" else (f"x{t.realtime_factor:.1f} realtime" if t.realtime_factor else "")
    if kind == "running" and progress:
        detail = terminal_safe(progress).replace("\n", " ")[-60:]  # the newest partial output, escapes dropped
    if t.retry_count:
        detail = f"{detail} (try {t.retry_count + 1})" if detail else f"try {t.retry_count + 1}"
    detail = " ".join((detail or "").split())  # one line, whatever the error held
    style = "$error" if kind == "failed" else "$text-muted"
    worker = worker_at(t.worker_id, t.rig)  # gpu0, or gpu0@lab in a cluster (worker names repeat across rigs)
    cells = (status, clip(t.name, NAME_W).rstrip(), t.task_class, worker, fmt_duration(dur),
             fmt_rate(t.tokens_per_s), Content.styled(clip(detail, DETAIL_W).rstrip(), style))
    haystack = " ".join((t.name, t.task_id, t.task_class, shown, t.status, worker, t.model or "")).lower()
    sort = {"status": (GROUP_ORDER[kind], shown), "name": t.name.lower(), "class": t.task_class,
            "worker": worker if t.worker_id else "~", "dur": -1.0 if dur is None else dur,
            "tps": -1.0 if t.tokens_per_s is None else t.tokens_per_s, "detail": detail}
    return TaskEntry(t.task_id, cells, GROUP_ORDER[kind], sort, haystack, t, detail, style)


EntryKey = tuple[str, TaskView, str | None, float | None]


def entry_key(t: TaskView, kind: str, progress: str | None, taken_at: float) -> EntryKey:
    """What a row's cells depend on: "now" only while its duration still counts up."""
    ticking = t.duration_s is None and bool(t.started_at) and not t.ended_at
    return (kind, t, progress, taken_at if ticking else None)


def live_entries(snap: Snapshot, memo: dict[EntryKey, TaskEntry] | None = None) -> list[TaskEntry]:
    """Running first, then failed (they need action), then recent; a task in two lists once.
    ``memo``: the last call's entries by their inputs, reused when equal (a busy rig's failed
    and recent rows do not change from one snapshot to the next) and refilled with this call's."""
    out: list[TaskEntry] = []
    fresh: dict[EntryKey, TaskEntry] = {}
    seen: set[str] = set()
    by_task = {w.current_task: w for w in snap.workers if w.current_task}
    for kind, group in (("running", snap.running), ("failed", snap.failed), ("recent", snap.recent)):
        for t in group:
            if t.task_id in seen:
                continue
            seen.add(t.task_id)
            w = by_task.get(t.task_id)
            if kind == "running" and w is not None:  # the worker knows when it started and how fast it goes
                t = replace(t, started_at=t.started_at or w.task_started_at, model=t.model or w.resident_model,
                            tokens_per_s=t.tokens_per_s if t.tokens_per_s is not None else w.tokens_per_s)
            progress = w.progress if w is not None else None
            key = entry_key(t, kind, progress, snap.taken_at)
            entry = memo.get(key) if memo is not None else None
            if entry is None:
                entry = _entry(t, snap.taken_at, kind, progress)
            fresh[key] = entry
            out.append(entry)
    if memo is not None:
        memo.clear()
        memo.update(fresh)
    return out


def fmt_wait(seconds: float | None) -> str:
    """How long a queued task has waited, to the minute past the first one: a deep queue's
    rows then change once a minute, not on every snapshot."""
    if seconds is None or seconds < 60:
        return fmt_duration(seconds)
    s = int(seconds)
    return f"{s // 60}m" if s < 3600 else f"{s // 3600}h{(s % 3600) // 60:02d}"


def queued_entry(r: QueuedRow, taken_at: float, memo: dict[QueuedRow, TaskEntry] | None = None) -> TaskEntry:
    """A queued task from its file name: place in line, model, and how long it has waited.
    ``memo``: row -> its entry before the wait is filled in (that part does not change)."""
    waited = max(0.0, taken_at - r.enqueued_at) if taken_at else None
    entry = memo.get(r) if memo is not None else None
    if entry is None:
        view = TaskView(task_id=r.task_id, name=r.name, task_class=r.task_class, status="queued", model=r.model)
        entry = _entry(view, taken_at, "queued",
                       detail=f"#{r.position + 1} in line" + (f", {r.model}" if r.model else ""))
        if memo is not None:
            memo[r] = entry
    cells = entry.cells[:4] + (fmt_wait(waited),) + entry.cells[5:]
    sort = dict(entry.sort, dur=-1.0 if waited is None else waited, status=(GROUP_ORDER["queued"], r.position))
    return replace(entry, cells=cells, sort=sort)


def task_rows(snap: Snapshot) -> list[Row]:
    """The live rows as (key, cells), default order (kept for callers that want plain rows)."""
    return [(e.key, e.cells) for e in live_entries(snap)]


class FilterPrompt(ModalScreen[str | None]):
    """One line at the bottom: the Tasks filter. Enter applies, Escape keeps the old one."""

    DEFAULT_CSS = """
    FilterPrompt { align: left bottom; background: $background 30%; }
    #filter-box { height: auto; width: 100%; background: $surface; border-top: solid $primary; padding: 0 1; }
    #filter-help { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box"):
            yield Label(Content("filter tasks by name, class, state, worker or model (empty: all)"),
                        id="filter-help")
            yield Input(self.current, placeholder="e.g. llm failed gpu1", id="filter-input")

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class TasksTable(KeyedTable):
    """Live and queued tasks. Keys when focused: o/O sort, [ ] queued pages, Home/End, page keys."""

    KEEP_SPARE_ROWS = True  # a busy table keeps its size: no layout pass per snapshot

    COLUMNS = (("status", "state", 7), ("name", "task", 20), ("class", "class", 6), ("worker", "worker", WORKER_W),
               ("dur", "time", 5), ("tps", "tok/s", 6), ("detail", "detail / reason", None))
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "sort_next", "Sort", show=False),
        Binding("O", "sort_reverse", "Reverse sort", show=False),
        Binding("right_square_bracket", "queued_page(1)", "Next queued", show=False),
        Binding("left_square_bracket", "queued_page(-1)", "Prev queued", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filter_text = ""
        self.sort_column: str | None = None  # None: running, failed, recent, queued
        self.sort_reverse = False
        self.queued_source: QueuedSource | None = None
        self.queued_offset = 0
        self.queued_page_data: QueuedPage | None = None
        self._live: list[TaskEntry] = []
        # Rows are rebuilt only when their inputs change (live: by TaskView and kind; queued: by
        # file-name row; cells cut to the columns: by entry and widths); each holds one snapshot's.
        self._live_memo: dict[EntryKey, TaskEntry] = {}
        self._queued_memo: dict[QueuedRow, TaskEntry] = {}
        self._fit_memo: dict[str, tuple[TaskEntry, tuple[int, int], tuple[object, ...]]] = {}
        self._entries: dict[str, TaskEntry] = {}
        self._taken_at = 0.0
        self._reading = False
        # (page, offset, filter) read by the periodic refresh, shown with the next snapshot
        self._waiting_page: tuple[QueuedPage, int, str] | None = None
        self.name_w, self.detail_w = NAME_W, DETAIL_W
        self.worker_w = WORKER_W  # grows (never shrinks) to the longest worker shown: gpu0@lab in a cluster
        self._lister_for: tuple[Path, Path | None] | None = None  # opened after the first frame (start_lister)

    def on_mount(self) -> None:  # Textual also runs KeyedTable.on_mount (handlers run per class)
        self.call_after_refresh(self.fit_columns)  # once the columns exist, whatever order Resize comes in
        self.set_interval(QUEUED_REFRESH_S, self._queued_tick)
        root = getattr(self.app, "root", None)
        if root is not None and self.queued_source is None:
            self._lister_for = (Path(root), getattr(self.app, "config_path", None))

    def start_lister(self) -> None:
        """Open the queue's lister once: after the first snapshot is drawn, or at the first queued tick
        when none came. Its imports and first listing (~0.08 s of CPU, in a thread that holds the GIL)
        would otherwise delay the dashboard's first frame."""
        if self._lister_for is not None:
            self._open_lister(*self._lister_for)
            self._lister_for = None

    @work(thread=True, exclusive=True, group="queued-open")
    def _open_lister(self, root: Path, config_path: Path | None) -> None:
        """The first listing of the configured store's queue (files: one listdir, then inotify; Redis:
        the cluster's lanes) off the UI thread."""
        import os

        from engine.config import load_config, resolve_config_path
        from engine.paths import RigPaths
        from engine.store.open_queue import open_queued_source
        from engine.store.settings import effective_store

        try:
            store = effective_store(load_config(resolve_config_path(config_path)).store, os.environ)
            lister = open_queued_source(store, RigPaths(root))
        except (OSError, ValueError, RuntimeError):  # a bad config or a store that does not answer: no pages
            return
        if lister is not None:
            self.app.call_from_thread(self._lister_ready, lister)

    def _lister_ready(self, lister: QueuedSource) -> None:
        if self.queued_source is None:
            self.queued_source = lister
            self.refresh_queued()
        else:
            lister.close()

    def on_unmount(self) -> None:
        if self.queued_source is not None:
            self.queued_source.close()

    # ---- data in ----
    def show(self, snap: Snapshot) -> None:
        self._taken_at = snap.taken_at
        self._live = live_entries(snap, self._live_memo)
        self._widen_worker(self._live)
        self._take_waiting_page()
        self._apply()
        if self._lister_for is not None:
            self.call_after_refresh(self.start_lister)

    def _queued_tick(self) -> None:
        """Every QUEUED_REFRESH_S: a page read by the last tick that no snapshot took (the rig
        is quiet or stale) is shown now; then the next page is read, to wait for a snapshot."""
        self.start_lister()
        if self._take_waiting_page():
            self._apply()
        self.refresh_queued(at_once=False)

    def _take_waiting_page(self) -> bool:
        waiting, self._waiting_page = self._waiting_page, None
        if waiting is None or waiting[1:] != (self.queued_offset, self.filter_text):
            return False
        self.queued_page_data = waiting[0]
        return True

    def refresh_queued(self, *, at_once: bool = True) -> None:
        """Read the wanted queued page in a thread; one read at a time (the index is not shared
        between threads), and only while the table is shown. ``at_once``: show it as soon as it
        is read (the operator asked); else it waits for the next snapshot, so that the table is
        redrawn once a snapshot, not once more for the queue."""
        if self.queued_source is None or self._reading or not self.display:
            return
        self._reading = True
        self._read_page(self.queued_source, self.queued_offset, self.filter_text, at_once)

    @work(thread=True, group="queued")
    def _read_page(self, source: QueuedSource, offset: int, text: str, at_once: bool) -> None:
        try:
            page: QueuedPage | None = source.page(offset, QUEUED_PAGE, text)
        except OSError:
            page = None
        self.app.call_from_thread(self._got_page, page, offset, text, at_once)

    def _got_page(self, page: QueuedPage | None, offset: int, text: str, at_once: bool = True) -> None:
        self._reading = False
        if (offset, text) != (self.queued_offset, self.filter_text):
            self.refresh_queued()  # the operator asked something else meanwhile
            return
        if page is None or page == self.queued_page_data:
            self._waiting_page = None
        elif at_once or self.queued_page_data is None:
            self._waiting_page = None
            self.queued_page_data = page
            self._apply()
        else:
            self._waiting_page = (page, offset, text)

    # ---- view ----
    def _apply(self, *, compact: bool = False) -> None:
        live = [e for e in self._live if matches(e, self.filter_text)]
        keys = {e.key for e in live}
        page = self.queued_page_data
        memo = self._queued_memo
        queued = [queued_entry(r, self._taken_at, memo) for r in page.rows if r.task_id not in keys] if page else []
        self._queued_memo = {r: memo[r] for r in page.rows if r in memo} if page else {}
        entries = live + queued
        if self.sort_column is not None:
            col = self.sort_column
            entries.sort(key=lambda e: (e.sort[col], e.group), reverse=self.sort_reverse)
        self._entries = {e.key: e for e in entries}
        super().set_rows([(e.key, self._fitted(e)) for e in entries], compact=compact, now=self._taken_at)
        if len(self._fit_memo) > 2 * len(entries) + QUEUED_PAGE:  # rows long gone
            self._fit_memo = {k: v for k, v in self._fit_memo.items() if k in self._entries}
        self._retitle()

    def _fitted(self, e: TaskEntry) -> tuple[object, ...]:
        """``e.fitted`` at the current widths, reused while the entry and widths are the same."""
        widths = (self.name_w, self.detail_w)
        hit = self._fit_memo.get(e.key)
        if hit is not None and hit[0] is e and hit[1] == widths:
            return hit[2]
        cells = e.fitted(*widths)
        self._fit_memo[e.key] = (e, widths, cells)
        return cells

    def _widen_worker(self, entries: list[TaskEntry]) -> None:
        """A cluster's workers are named with their rig (gpu0@lab): the worker column grows to the
        longest, up to MAX_WORKER_W, once; the task and detail columns give it the room."""
        want = min(MAX_WORKER_W, max((len(str(e.cells[WORKER_CELL])) for e in entries), default=0))
        if want > self.worker_w:
            self.worker_w = want
            if self.columns:
                col = self.columns[ColumnKey("worker")]
                col.width, col.auto_width = want, False
                self.name_w = -1  # fit_columns sets every width again
                self.fit_columns()

    def on_resize(self) -> None:
        self.fit_columns()

    def fit_columns(self) -> None:
        """The detail / reason column takes the width that is left (a failure's reason is read
        without scrolling sideways); on a narrow screen the task column gives way first."""
        width = self.size.width - self.styles.scrollbar_size_vertical  # room kept for the scrollbar
        if width <= 0 or not self.columns:
            return
        pad = 2 * self.cell_padding
        fixed = sum((self.worker_w if k == "worker" else w) + pad for k, _, w in self.COLUMNS
                    if w is not None and k != "name")
        left = width - fixed - 2 * pad
        name_w = NAME_W if left - NAME_W >= WANT_DETAIL_W else max(MIN_NAME_W, left - WANT_DETAIL_W)
        detail_w = max(MIN_DETAIL_W, left - name_w)
        if (name_w, detail_w) == (self.name_w, self.detail_w):
            return
        self.name_w, self.detail_w = name_w, detail_w
        for key, w in (("name", name_w), ("detail", detail_w)):
            col = self.columns[ColumnKey(key)]
            col.width, col.auto_width = w, False
        self._require_update_dimensions = True  # DataTable recomputes its virtual width on idle
        self._apply()
        self.refresh()

    def _retitle(self) -> None:
        bits = ["Tasks"]
        if self.filter_text:
            bits.append(f"/{self.filter_text}")
        if self.sort_column is not None:
            label = {k: lbl for k, lbl, _ in self.COLUMNS}[self.sort_column]
            bits.append(f"by {label} {'▼' if self.sort_reverse else '▲'}")
        page = self.queued_page_data
        if page is not None and page.matched:
            first = page.offset + 1
            last = page.offset + len(page.rows)
            bits.append(f"queued {first}-{last} of {page.matched:,}" if page.matched > len(page.rows)
                        else f"queued {page.matched:,}")
        title = " · ".join(bits)
        if self.border_title != title:
            self.border_title = title

    def selected_view(self) -> TaskView | None:
        key = self.selected_key
        entry = self._entries.get(key) if key else None
        return entry.view if entry else None

    # ---- keys ----
    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.queued_offset = 0
        self._apply(compact=True)
        self.refresh_queued()

    def ask_filter(self) -> None:
        def done(text: str | None) -> None:
            if text is not None:
                self.set_filter(text)
        self.app.push_screen(FilterPrompt(self.filter_text), done)

    def set_sort(self, column: str | None, reverse: bool = False) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self._apply(compact=True)

    def action_sort_next(self) -> None:
        order: list[str | None] = [None, *SORTABLE]
        self.set_sort(order[(order.index(self.sort_column) + 1) % len(order)])

    def action_sort_reverse(self) -> None:
        self.set_sort(self.sort_column or "status", not self.sort_reverse)

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        col = str(event.column_key.value)
        if col not in SORTABLE and col != "detail":
            return
        self.set_sort(col, not self.sort_reverse if col == self.sort_column else False)

    def action_queued_page(self, step: int) -> None:
        page = self.queued_page_data
        if page is None:
            self.notify("no queued tasks listed (no shared root)", severity="warning")
            return
        offset = max(0, self.queued_offset + step * QUEUED_PAGE)
        if offset >= max(page.matched, 1):
            return
        self.queued_offset = offset
        self.refresh_queued()

    @on(DataTable.RowSelected)
    def _queued_chosen(self, event: DataTable.RowSelected) -> None:
        """Enter on a queued row opens its detail here (the app knows only the snapshot's tasks)."""
        key = self.key_of(event.row_key)
        entry = self._entries.get(key) if key else None
        if entry is not None and entry.group == GROUP_ORDER["queued"]:
            from galaxy_tui.screens.task_detail import TaskDetailScreen

            event.stop()
            self.app.push_screen(TaskDetailScreen(entry.view, getattr(self.app, "root", None)))
