"""The Events view full-screen (``l`` from anywhere, ``enter`` on the Events panel).

With the rig's shared root it reads the newest ``LOG_EVENTS`` lines of the event log itself
(in a worker thread, every ``LOG_RELOAD_S``; the snapshot carries only the last 30);
without one it follows the app's snapshots (polling ``app.snapshot``: an identity check),
so the app needs no hook for it. escape, q or l go back.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer

from engine.snapshot import EventView
from galaxy_tui.widgets.events import EventsPanel

POLL_S = 0.5
LOG_EVENTS = 500
LOG_RELOAD_S = 2.0


class EventsScreen(Screen[None]):
    DEFAULT_CSS = """
    EventsScreen #events-full {
        height: 1fr;
        border: round $primary;
        border-title-color: $primary;
        background: $surface;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,l", "close", "Back")]

    def __init__(self, *, show_all: bool = False) -> None:
        super().__init__()
        self.show_all = show_all
        self._seen: object = None
        self._log: list[EventView] | None = None  # from the log file, once read
        self._reading = False

    def compose(self) -> ComposeResult:
        yield EventsPanel(id="events-full")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        panel = self.query_one(EventsPanel)
        panel.show_all = self.show_all
        panel.focus()
        self._follow()
        self.set_interval(POLL_S, self._follow)
        root = getattr(self.app, "root", None)
        if root is not None:
            from engine.paths import RigPaths

            events = RigPaths(Path(root)).events
            self._read_log(events)
            self.set_interval(LOG_RELOAD_S, lambda: self._read_log(events))

    def _follow(self) -> None:
        snap = getattr(self.app, "snapshot", None)
        if self._log is None and snap is not None and snap is not self._seen:
            self._seen = snap
            self.query_one(EventsPanel).show(snap.events)

    def _read_log(self, path: Path) -> None:
        if not self._reading:
            self._reading = True
            self._tail(path)

    @work(thread=True, group="events-log")
    def _tail(self, path: Path) -> None:
        from engine.event_views import tail_event_views

        try:
            views: list[EventView] | None = tail_event_views(path, LOG_EVENTS, max_bytes=LOG_EVENTS * 600)
        except OSError:
            views = None
        self.app.call_from_thread(self._got_log, views)

    def _got_log(self, views: list[EventView] | None) -> None:
        self._reading = False
        if views:  # an empty or unreadable log: the snapshot's tail stays
            self._log = views
            panel = self.query_one(EventsPanel)
            panel.title = f"Events (log, last {len(views)})"
            panel.show(views)

    def action_close(self) -> None:
        self.dismiss(None)
