"""A line of (text, style) parts -> a ``Strip``, for Line-API widgets, with drawn pieces kept.

Why: Textual draws ``Content`` by making a Rich style for every piece of it (with the piece's
x, y, for text selection): ~0.5 ms a GPU card line, and the utilisation sparkline changes every
card's second line every tick. Most pieces of a changed line (labels, worker, state, the VRAM
bar) are the same text in the same style at the same place as before, so each drawn piece is
kept by (text, style, x, y) and only new pieces are styled.

The result is what ``Visual.to_strips`` makes of ``Content.assemble(*parts)`` (a test compares
them): pieces split where ``Content.render`` splits them (at every styled part, even an empty
one; plain parts run together). A line it cannot match cheaply (wider than the widget, control
characters, a text selection, links, aligned content) goes through ``Visual.to_strips`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.style import Style
from textual.visual import Visual
from textual.widget import Widget

from galaxy_tui.render import Part

MEMO = 2048  # pieces kept per base style; past this that memo starts again
_ODD = re.compile(r"[\x00-\x1f\x7f-\x9f\t]")  # Content strips control codes; to_strips expands tabs


def runs(parts: Sequence[Part]) -> list[tuple[str, str]]:
    """The pieces ``Content.render`` yields for ``Content.assemble(*parts)``: a styled part alone,
    plain parts (or parts with an empty style) run together up to the next styled part."""
    out: list[tuple[str, str]] = []
    plain: list[str] = []
    for part in parts:
        if isinstance(part, str):
            plain.append(part)
            continue
        text, style = part
        if not style:
            plain.append(text)
            continue
        if plain:
            joined = "".join(plain)
            if joined:
                out.append((joined, ""))
            plain = []
        if text:
            out.append((text, style))
    joined = "".join(plain)
    if joined:
        out.append((joined, ""))
    return out


def cut(pieces: list[tuple[str, str]], width: int) -> list[tuple[str, str]]:
    """``pieces`` cut to ``width`` characters, the last one an ellipsis in the style of the piece it
    replaces: what ``Content.truncate(width, ellipsis=True)`` makes of a line too wide for a
    ``text-wrap: nowrap; text-overflow: ellipsis`` widget (one cell per character: ``_simple``
    checks that after)."""
    out: list[tuple[str, str]] = []
    left = width
    for text, style in pieces:
        if left <= 0:
            break
        if len(text) >= left:
            out.append((text[:left - 1] + "…", style))
            break
        out.append((text, style))
        left -= len(text)
    return out


class LineStrips:
    """The drawing of one widget's lines; ``clear`` it when the theme or the CSS changes."""

    def __init__(self) -> None:
        self._pieces: dict[Style, dict[tuple[str, str, int, int], Segment]] = {}
        self._styles: dict[tuple[Style, str], Style] = {}

    def clear(self) -> None:
        self._pieces.clear()
        self._styles.clear()

    def strip(self, widget: Widget, parts: Sequence[Part], y: int, width: int) -> Strip:
        """``parts`` drawn as the widget's y-th content line, ``width`` cells wide at most (not
        padded: the widget's styles pad it, as for any rendered content)."""
        pieces = runs(parts)
        base = widget.visual_style
        if sum(len(t) for t, _ in pieces) > width and self._cuts_with_ellipsis(widget):
            pieces = cut(pieces, width)
        if not self._simple(widget, pieces, width):
            return self._slow(widget, parts, y, width, base)
        memo = self._pieces.get(base)
        if memo is None or len(memo) >= MEMO:
            if len(self._pieces) >= 8:  # a card is drawn on a few backgrounds (selected, focused)
                self._pieces.clear()
            memo = self._pieces[base] = {}
        segments: list[Segment] = []
        x = 0
        for text, style in pieces:
            key = (text, style, x, y)
            segment = memo.get(key)
            if segment is None:
                segment = memo[key] = Segment(text, self._style(widget, base, style).rich_style_with_offset(x, y))
            segments.append(segment)
            x += len(text)
        return Strip(segments)

    def _style(self, widget: Widget, base: Style, style: str) -> Style:
        """As ``_FormattedLine.to_strip`` styles a piece: base + the piece's (base + its span)."""
        found = self._styles.get((base, style))
        if found is None:
            text_style = Style.combine([base, widget._get_style(style)]) if style else Style.combine([base])
            found = self._styles[(base, style)] = base + text_style
        return found

    @staticmethod
    def _cuts_with_ellipsis(widget: Widget) -> bool:
        rules = widget.styles
        return rules.text_wrap == "nowrap" and rules.text_overflow == "ellipsis"

    @staticmethod
    def _slow(widget: Widget, parts: Sequence[Part], y: int, width: int, base: Style) -> Strip:
        """Textual's own drawing, for the lines ``_simple`` turns away (y: the line's place in
        the card, for the selection offsets)."""
        content = Content.assemble("\n" * y, *parts)
        strips = Visual.to_strips(widget, content, width, None, base)
        return strips[y] if y < len(strips) else Strip.blank(0)

    @staticmethod
    def _simple(widget: Widget, pieces: list[tuple[str, str]], width: int) -> bool:
        """Lines ``Visual.to_strips`` draws piece by piece, unchanged: it fits, no control
        characters or links, nothing selected, the content aligned top left."""
        text = "".join(t for t, _ in pieces)
        if len(text) > width or _ODD.search(text) or cell_len(text) > width:
            return False
        if widget.text_selection is not None or widget.styles.content_align != ("left", "top"):
            return False
        rules = widget.styles
        if rules.text_align not in ("left", "start") or rules.line_pad:
            return False
        return not any("link" in s or "@" in s for _, s in pieces)


class KeptLines:
    """A line-drawn widget's lines as last drawn: line y is drawn from its parts (``LineStrips``) and
    kept until ``forget(y)`` (its parts changed) or until the widget's base style changes; ``clear``
    on a theme or CSS change. The GPU cards, the Queue panel and the text panels share it."""

    def __init__(self) -> None:
        self.drawn = LineStrips()
        self.strips: dict[int, tuple[Style, Strip]] = {}  # line -> (base style, its drawing)

    def line(self, widget: Widget, y: int, parts: Sequence[Part], width: int) -> Strip:
        base = widget.visual_style
        kept = self.strips.get(y)
        if kept is not None and kept[0] == base:
            return kept[1]
        strip = self.drawn.strip(widget, parts, y, width)
        self.strips[y] = (base, strip)
        return strip

    def forget(self, y: int | None = None) -> None:
        """Line y drawn again at its next ``line`` (None: every line)."""
        if y is None:
            self.strips.clear()
        else:
            self.strips.pop(y, None)

    def clear(self) -> None:
        self.strips.clear()
        self.drawn.clear()

