"""A text widget that redraws without a layout pass unless its line count changed.

``Static.update`` always asks for a full layout; at two snapshots a second on a busy screen
that layout pass is most of the dashboard's CPU. Same text size: just repaint. Text given as
lines of (text, style) parts (``update_lines``: the top bar, new at every snapshot) is drawn line
by line with ``LineStrips``: only the lines that changed, only their new pieces styled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from textual.content import Content
from textual.css.styles import RulesMap
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from galaxy_tui.render import Part, same_look
from galaxy_tui.widgets.line_strips import KeptLines


class TextPanel(Widget):
    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._content: Content = Content("")
        self._lines = 1
        self._parts: list[tuple[Part, ...]] | None = None  # update_lines: each line's parts
        self._kept: KeptLines | None = None  # update_lines: each line's drawing

    def update(self, content: Content | str) -> None:
        content = Content(content) if isinstance(content, str) else content
        if self._parts is None and same_look(content, self._content):
            return
        lines = self._height_of(content)
        self._content, self._parts = content, None
        if self._kept is not None:
            self._kept.forget()
        self.refresh(layout=lines != self._lines)
        self._lines = lines

    def _height_of(self, content: Content) -> int:
        """Its lines as shown: wrapped at the panel's width where the panel wraps (a failure reason
        three lines long after one of one line must get its three lines)."""
        width = self.content_size.width
        if self.styles.text_wrap == "nowrap" or width <= 0:
            return content.plain.count("\n") + 1
        return content.get_height(cast("RulesMap", self.styles), width)  # as Widget does: its styles read as rules

    def update_lines(self, lines: Sequence[Sequence[Part]]) -> None:
        """The text as lines of parts (no line breaks in them): drawn line by line."""
        new = [tuple(line) for line in lines] or [()]
        old = self._parts
        if new == old:
            return
        self._parts = new
        self._content = Content("\n").join([Content.assemble(*line) for line in new])
        if self._kept is None:
            self._kept = KeptLines()
        if old is None or len(new) != len(old):
            self._kept.forget()
            self.refresh(layout=len(new) != self._lines)
            self._lines = len(new)
            return
        width = self.size.width
        changed = [y for y, (now, before) in enumerate(zip(new, old)) if now != before]
        for y in changed:
            self._kept.forget(y)
        if changed:  # one refresh for the lines (each call posts to the message queue)
            self.refresh(*[Region(0, y, width, 1) for y in changed])

    def render(self) -> Content:
        return self._content

    def render_line(self, y: int) -> Strip:
        parts = self._parts
        if parts is None or self._kept is None or y >= len(parts):
            return super().render_line(y)
        return self._kept.line(self, y, parts[y], self.content_size.width)

    def notify_style_update(self) -> None:  # a theme or CSS change: "$primary" may be another colour
        if self._kept is not None:
            self._kept.clear()
        super().notify_style_update()
