"""A text widget that redraws without a layout pass unless its line count changed.

``Static.update`` always asks for a full layout; at two snapshots a second on a busy screen
that layout pass is most of the dashboard's CPU. Same text size: just repaint.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from galaxy_tui.render import same_look


class TextPanel(Widget):
    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._content: Content = Content("")
        self._lines = 1

    def update(self, content: Content | str) -> None:
        content = Content(content) if isinstance(content, str) else content
        if same_look(content, self._content):
            return
        lines = content.plain.count("\n") + 1
        self._content = content
        self.refresh(layout=lines != self._lines)
        self._lines = lines

    def render(self) -> Content:
        return self._content
