"""The Queue panel, drawn line by line (the Line API), with a height that does not follow every
snapshot down.

Why: on a busy rig the number of waiting tasks shown (0 to 4) changes from one snapshot to the
next, and a text panel of ``height: auto`` whose line count changes is a layout pass of the whole
screen (reflow, scrollbars, every moved widget redrawn): that was most of a busy dashboard's
layout work. The panel grows at once but shrinks only after its content has been shorter for
``SHRINK_AFTER_S`` of snapshot time (the lines in between are blank), and a snapshot redraws only
the lines whose parts changed, each drawn from its parts with the pieces it shares with the last
drawing kept (``LineStrips``, as the GPU cards).
"""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from engine.snapshot import Snapshot
from galaxy_tui.render import Part
from galaxy_tui.widgets.line_strips import KeptLines
from galaxy_tui.widgets.panels import queue_parts
from galaxy_tui.widgets.tables import SHRINK_AFTER_S


class QueuePanel(Widget):
    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[list[Part]] = []
        self._height = 1
        self._short_since: float | None = None  # since when the content has had fewer lines than shown
        self._kept = KeptLines()

    def show(self, snap: Snapshot) -> None:
        lines = queue_parts(snap)
        height = self._held(len(lines), snap.taken_at)
        old, self._lines = self._lines, lines
        if height != self._height:
            self._height = height
            self._kept.forget()
            self.refresh(layout=True)
            return
        width = self.content_size.width
        changed = [y for y in range(height) if (lines[y] if y < len(lines) else None) != (old[y] if y < len(old) else None)]
        for y in changed:
            self._kept.forget(y)
        if changed:  # one refresh for the lines (each call posts to the message queue)
            self.refresh(*[Region(0, y, width, 1) for y in changed])

    def _held(self, lines: int, now: float) -> int:
        """The height to show: the content's, or the current one while the content has been
        shorter for less than SHRINK_AFTER_S (``now``: the snapshot's time)."""
        if lines >= self._height:
            self._short_since = None
            return max(lines, 1)
        if self._short_since is None:
            self._short_since = now
        if now - self._short_since >= SHRINK_AFTER_S:
            self._short_since = None
            return max(lines, 1)
        return self._height

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._height

    def render(self) -> Content:  # the whole panel as one text (text selection reads it)
        return Content("\n").join([Content.assemble(*line) for line in self._lines])

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if y >= len(self._lines):
            return Strip.blank(width, self.visual_style.rich_style)
        return self._kept.line(self, y, self._lines[y], width)

    def notify_style_update(self) -> None:  # a theme or CSS change: "$warning" may be another colour
        self._kept.clear()
        super().notify_style_update()
