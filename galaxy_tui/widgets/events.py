"""The Events view: one line per event that always names its task and worker.

Why this shape: the operator reads events to find out what happened to which task on which
worker. Each line is ``time type task @worker message``; a multi-line error is folded to its
first and last lines so a line never wraps (the panel cuts it with an ellipsis at the edge).
Claims and starts are the bulk of a busy log and say little, so they are hidden until ``f``.
The panel is focusable and scrollable; ``enter`` (or ``l`` from anywhere) shows it full-screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.style import Style

from engine.model import worker_at
from engine.snapshot import EventView
from galaxy_tui.render import Part, clip, fmt_clock
from galaxy_tui.widgets.line_strips import LineStrips

QUIET_TYPES = frozenset({"task_claimed", "task_started"})
ALARM_WORDS = ("fail", "error", "alert", "hot", "lost", "denied", "unreachable")


def fold(text: str) -> str:
    """A multi-line text as one line: its first and last non-empty lines, joined by an ellipsis."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    return lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1]}"


def event_message(e: EventView) -> str:
    """What the event says beyond its type, task and worker (the supervisor's message names
    them when it has nothing else to say: that would repeat them)."""
    where = [x for x in (e.task_id, e.worker_id) if x]
    msg = fold(e.message or "")
    return "" if msg in ("-", " on ".join(where)) else msg


def event_parts(e: EventView) -> list[Part]:
    """One event's line as (text, style) parts (the panel draws them with ``LineStrips``)."""
    style = "$error" if any(w in e.event_type for w in ALARM_WORDS) else ""
    return [(fmt_clock(e.at), "$text-muted"), " ", (clip(e.event_type, 15), "$accent"), " ",
            (e.task_id or "-", "bold"), " ", (f"@{worker_at(e.worker_id, e.rig)}", "$secondary"), " ", (event_message(e), style)]


def event_line(e: EventView) -> Content:
    return Content.assemble(*event_parts(e))


def visible_events(events: Iterable[EventView], show_all: bool) -> list[EventView]:
    """Newest first; claims and starts only when ``show_all``."""
    kept = [e for e in events if show_all or e.event_type not in QUIET_TYPES]
    return sorted(kept, key=lambda e: e.at, reverse=True)


def events_content(events: Sequence[EventView], show_all: bool = False, limit: int | None = None) -> Content:
    lines = [event_line(e) for e in visible_events(events, show_all)[:limit]]
    if lines:
        return Content("\n").join(lines)
    return Content.assemble(*no_events_parts(events, show_all))


def no_events_parts(events: Sequence[EventView], show_all: bool) -> list[Part]:
    return [("no events yet" if show_all or not events else "only claims and starts (f shows them)", "$text-muted")]


class EventsPanel(ScrollView, can_focus=True):
    """Focusable, scrollable event tail drawn line by line (the Line API).

    Why a ScrollView: a new snapshot repaints the lines without a layout pass. The virtual
    height is the most events received so far (30 from a running supervisor), not the number
    shown, so hiding claims/starts or new events arriving never resize it; only a terminal
    resize does. ``show(events)`` keeps the scroll where the operator left it.
    """

    DEFAULT_CSS = """
    EventsPanel { text-wrap: nowrap; text-overflow: ellipsis; overflow-x: hidden; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_quiet", "Claims/starts", show=False),
        Binding("enter", "full_screen", "Full screen", show=False),
    ]

    def __init__(self, *, title: str = "Events", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.show_all = False
        self._shown = False
        self.events: tuple[EventView, ...] = ()
        self.title = title
        self.parts: list[tuple[Part, ...]] = []  # each line's (text, style) parts
        self._height = 0
        # A line's drawing by its parts and the width: a new event shifts every line down, and each
        # line is drawn alone (as line 0 of its own text, from its parts with LineStrips), so its
        # drawing does not depend on its place. Kept for the lines shown now; the rest are dropped
        # at the next change.
        self._strips: dict[tuple[tuple[Part, ...], int], Strip] = {}
        self._drawn = LineStrips()

    @property
    def lines(self) -> list[Content]:
        return [Content.assemble(*line) for line in self.parts]

    @property
    def content(self) -> Content:
        """All lines as one text (what the panel shows, top to bottom)."""
        return Content("\n").join(self.lines)

    def on_mount(self) -> None:
        self._retitle()

    def show(self, events: Sequence[EventView]) -> None:
        events = tuple(events)
        if events == self.events and self._shown:
            return
        self._shown = True
        self.events = events
        self._render_lines()

    def _render_lines(self) -> None:
        parts = [tuple(event_parts(e)) for e in visible_events(self.events, self.show_all)]
        if not parts:
            parts = [tuple(no_events_parts(self.events, self.show_all))]
        if parts != self.parts:
            self.parts = parts
            shown = set(parts)
            self._strips = {k: v for k, v in self._strips.items() if k[0] in shown}
            self._size_to_content()
            self.refresh()
        self._retitle()

    def _size_to_content(self) -> None:
        """Virtual height: the most lines or events seen (it only grows, so a snapshot with
        fewer events repaints without a layout pass; the blank lines cost nothing)."""
        self._height = max(self._height, len(self.parts), len(self.events))
        # never wider than the panel less its vertical scrollbar: lines are cut, not scrolled sideways
        size = Size(max(0, self.size.width - self.styles.scrollbar_size_vertical), self._height)
        if size != self.virtual_size:
            self.virtual_size = size

    def on_resize(self) -> None:
        self._size_to_content()

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if index >= len(self.parts) or width <= 0:
            return Strip.blank(width, self.rich_style)
        line = self.parts[index]
        key = (line, width)
        strip = self._strips.get(key)
        if strip is None:
            base = self.visual_style
            strip = self._drawn.strip(self, line, 0, width).extend_cell_length(
                width, (base + Style(reverse=False)).rich_style)  # padded, as Visual.to_strips(pad=True)
            self._strips[key] = strip
        return strip

    def notify_style_update(self) -> None:  # a theme or CSS change: every line in its new colours
        self._strips.clear()
        self._drawn.clear()
        super().notify_style_update()

    def _retitle(self) -> None:
        hidden = sum(1 for e in self.events if e.event_type in QUIET_TYPES)
        note = "all" if self.show_all else (f"{hidden} claims/starts hidden" if hidden else "")
        title = f"{self.title} ({note}, f)" if note else self.title
        if self.border_title != title:
            self.border_title = title

    def action_toggle_quiet(self) -> None:
        self.show_all = not self.show_all
        self._render_lines()

    def action_full_screen(self) -> None:
        from galaxy_tui.screens.events import EventsScreen

        if not isinstance(self.screen, EventsScreen):
            self.app.push_screen(EventsScreen(show_all=self.show_all))
