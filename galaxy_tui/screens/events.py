"""The Events view full-screen (``l`` from anywhere, ``enter`` on the Events panel).

It follows the app's snapshots itself (polling ``app.snapshot``, cheap: an identity check),
so the app needs no hook for it; escape, q or l go back.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer

from galaxy_tui.widgets.events import EventsPanel

POLL_S = 0.5


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

    def compose(self) -> ComposeResult:
        yield EventsPanel(id="events-full")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        panel = self.query_one(EventsPanel)
        panel.show_all = self.show_all
        panel.focus()
        self._follow()
        self.set_interval(POLL_S, self._follow)

    def _follow(self) -> None:
        snap = getattr(self.app, "snapshot", None)
        if snap is not None and snap is not self._seen:
            self._seen = snap
            self.query_one(EventsPanel).show(snap.events)

    def action_close(self) -> None:
        self.dismiss(None)
