"""Keyed DataTables that update in place and leave the view where the operator put it.

Why: a live table gets new rows several times a second. Rebuilding it (``clear`` + ``add_row``)
and moving the cursor back to its row scrolled the view to the cursor on every snapshot, so
running and failed rows slid out of sight and mouse-wheel scrolling snapped back. Here rows
are diffed by key: changed cells are updated (``update_cell``), the order is set with
``DataTable.sort``, the cursor follows its row key without scrolling, and the scroll offset is
kept. A row that leaves hands its table slot to a row that arrives, or leaves it blank at the
bottom for the next one, so a busy table whose length goes up and down never adds or removes
DataTable rows (each of those changes its virtual size: a layout pass of the whole screen). Text cells are ``rich.text.Text``: task names like
``job[intro]`` are data, never markup.

A cell is drawn once per content, not once per row and update: DataTable forgets every drawn
cell whenever any cell changes or the rows are reordered, and drawing a cell (Rich padding
and styling) was most of a busy dashboard's CPU. ``_render_cell`` keeps the drawn lines by
the cell's object and how it is drawn; a cell met again in another row (the recent tasks
shift down as tasks finish) only gets that row's click metadata. Whole lines are kept the same
way (``_render_line``): by the cell objects their row shows, so a row that only moved is not
assembled again either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import count
from typing import Any, ClassVar, Self, cast

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.content import Content
from textual.coordinate import Coordinate
from textual.css.styles import RenderStyles
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

Row = tuple[str, Sequence[object]]  # (row key, cells)
MIN_SPARE = 8  # blank rows a table may keep at its bottom whatever its length
SHRINK_AFTER_S = 30.0  # a busy table gives back blank rows only after this long with more than it keeps
MEMO = 4096  # cell texts and drawn cells kept; a table is cleared of them past this
SegmentLines = list[list[Segment]]
_texts: dict[str, Text] = {}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def as_cell(value: object, *, own: bool = False) -> object:
    """A str is shown literally (DataTable would parse it as markup); anything else as is. The
    same str gives the same Text object, so its drawing is found again (``_render_cell``);
    ``own``: a Text of its own (a row's first cell names its row: ``_reorder``)."""
    if not isinstance(value, str):
        return value
    if own:
        return Text(value, end="", no_wrap=True)
    text = _texts.get(value)
    if text is None:
        if len(_texts) >= MEMO:
            _texts.clear()
        text = _texts[value] = Text(value, end="", no_wrap=True)
    return text


def _same_cells(a: object, b: object) -> bool:
    return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and all(x is y for x, y in zip(a, b))


def with_meta(lines: SegmentLines, row: int, column: int) -> SegmentLines:
    """A drawn cell moved to another row: DataTable finds a click's cell in the segments' meta."""
    meta = Style.from_meta({"row": row, "column": column})
    return [[Segment(text, style + meta if style else meta, control) for text, style, control in line]
            for line in lines]


def _pieces(value: object) -> list[tuple[str, Style | None]] | None:
    """A cell's text pieces and their Rich styles where it is one line of one-cell characters: a
    Text without styles, or a Content (as DataTable draws it: its ``__rich__`` segments). None:
    anything else (wide characters, control codes, styled Text, other renderables)."""
    if isinstance(value, Text):
        if value.spans or value.style or value.justify or value.overflow or not value.no_wrap:
            return None
        pieces: list[tuple[str, Style | None]] = [(value.plain, None)]
    elif isinstance(value, Content):
        segments = value.render_segments(VisualStyle(), "\n")  # what its __rich__ hands Rich
        if not segments or segments[-1].text != "\n":
            return None
        pieces = [(text, style) for text, style, _ in segments[:-1]]
    else:
        return None
    text = "".join(t for t, _ in pieces)
    if _CONTROL.search(text) or cell_len(text) != len(text):
        return None
    return pieces


class KeyedTable(DataTable[object]):
    """A DataTable fed whole row lists: unchanged rows cost nothing, the view does not move."""

    COLUMNS: tuple[tuple[str, str, int | None], ...] = ()  # (key, label, width)
    KEEP_SPARE_ROWS = False  # True: rows that leave stay blank at the bottom (a fixed-height, busy table)
    # class defaults: DataTable.__init__ may refresh before KeyedTable.__init__ has run
    _sizing_from: Size | None = None  # within DataTable._update_dimensions: the virtual size before (refresh)
    _in_scroll_update = False
    sized_without_layout = 0  # virtual size changes taken without a layout (see refresh)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "first_row", "First", show=False),
        Binding("end", "last_row", "Last", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._rows: dict[str, tuple[object, ...]] = {}  # our key -> cells as given
        self._order: list[str] = []  # our keys, top to bottom
        self._slot: dict[str, str] = {}  # our key -> the DataTable row key holding it
        self._owner: dict[str, str] = {}  # DataTable row key -> our key
        self._slots = count()
        self._spare: list[str] = []  # blank rows kept at the bottom for rows to come
        self._cells_changed = False
        # (id(cell), how it is drawn) -> (the cell, the row it was drawn for, its lines): see _render_cell
        self._drawn: dict[tuple[object, ...], tuple[object, int, SegmentLines]] = {}
        # (cell ids, cursor/hover on the row, widths...) -> (the cells, the row drawn at, its strip): _render_line
        self._lines: dict[tuple[object, ...], tuple[tuple[object, ...], int, Strip]] = {}
        self._restyled: dict[tuple[Style, int], Style] = {}  # (segment style, row) -> with that row's metadata
        self._line_style: Style | None = None  # the widget's style during a drawing (render_lines)
        self._pass: tuple[int, int, int, tuple[object, ...]] | None = None  # what a drawing's lines share
        self._components: dict[tuple[str, ...], RenderStyles] | None = None  # during a drawing
        self._backgrounds: tuple[Color, Color] | None = None  # during a drawing
        self._header_rich: Style | None = None  # during a drawing
        self._roomy_since: float | None = None  # since when it has held more blank rows than it keeps

    def on_mount(self) -> None:
        for key, label, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    def set_rows(self, rows: Sequence[Row], *, compact: bool = False, now: float | None = None) -> None:
        """Show ``rows`` in this order. ``compact``: drop the blank rows kept for rows to come
        (after the operator filtered or sorted: the table shrinks to what it shows). ``now`` (the
        snapshot's time): a KEEP_SPARE_ROWS table gives back blank rows only once it has had more
        than it keeps for SHRINK_AFTER_S; a busy queue's length goes up and down every second,
        and each row added or removed is a layout pass of the whole screen. None: at once."""
        order = [k for k, _ in rows]
        wanted = {k: tuple(c) for k, c in rows}
        if len(wanted) != len(order):
            raise ValueError(f"{type(self).__name__}: duplicate row keys")
        selected, old_row = self.selected_key, self.cursor_row
        scroll_y = self.scroll_y
        shown, rows_before = self._on_screen(), self.row_count
        self._cells_changed = False
        gone = [k for k in self._order if k not in wanted]
        added = [k for k in order if k not in self._rows]
        moved = bool(gone or added)
        if moved:
            # Park the cursor at the top without its watcher (which scrolls to it); it goes back
            # to its row below. Removing rows could otherwise clamp it and drag the view along.
            self.set_reactive(DataTable.cursor_coordinate, Coordinate(0, self.cursor_column))
        for key in added:
            if gone:  # take over a leaving row's slot: cell updates, no row added or removed
                leaving = gone.pop()
                slot = self._slot.pop(leaving)
                self._rows[key] = self._rows.pop(leaving)
            elif self._spare:  # or a blank one kept from earlier
                slot = self._spare.pop()
                self._rows[key] = (("",) * len(self.COLUMNS))
            else:
                slot = f"row-{next(self._slots)}"
                self._add(slot, wanted[key])
                self._rows[key] = wanted[key]
            self._slot[key], self._owner[slot] = slot, key
        keep = self._keep(len(order), len(gone), compact, now)
        for key in gone:  # rows that leave for good: blanked and kept (the table's height holds)
            slot = self._slot.pop(key)
            del self._owner[slot]
            cells = self._rows.pop(key)
            if len(self._spare) >= keep:
                self.remove_row(slot)
                continue
            for (col, _, _), prev in zip(self.COLUMNS, cells):
                if prev != "":
                    self._put(slot, col, "")
            self._spare.append(slot)
        while len(self._spare) > keep:  # a table that shrank a lot (or was filtered): give back
            slot = self._spare.pop(0)
            self.remove_row(slot)
        for key, cells in wanted.items():
            before = self._rows[key]
            if before != cells:
                slot = self._slot[key]
                for (col, _, _), new, prev in zip(self.COLUMNS, cells, before):
                    if new != prev:
                        self._put(slot, col, new)
                self._rows[key] = cells
        if self._cells_changed:  # what update_cell does, once (its refresh: below)
            self._update_count += 1
        slots = [self._slot[k] for k in order] + self._spare
        reordered = [str(r.key.value) for r in self.ordered_rows] != slots
        if reordered:
            self._reorder({slot: i for i, slot in enumerate(slots)})
        self._order = order
        if moved or reordered:
            self._restore(selected, old_row, scroll_y)
        if self._cells_changed or moved or reordered:
            self._refresh_lines(shown, self.row_count != rows_before)

    def _keep(self, rows: int, freed: int, compact: bool, now: float | None) -> int:
        """How many blank rows stay at the bottom after this update (``freed``: the rows that leave
        and whose slots no arriving row took: they turn blank)."""
        if compact or not self.KEEP_SPARE_ROWS:
            self._roomy_since = None
            return 0
        keep = max(MIN_SPARE, rows)
        blank = len(self._spare) + freed
        if blank <= keep:
            self._roomy_since = None
            return keep
        if now is None:
            return keep
        if self._roomy_since is None:
            self._roomy_since = now
        if now - self._roomy_since >= SHRINK_AFTER_S:
            self._roomy_since = None
            return keep
        return blank

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        self._sizing_from = self.virtual_size  # the virtual size it sets: see refresh
        try:
            super()._update_dimensions(new_rows)
        finally:
            self._sizing_from = None

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Self:
        """A table that scrolls and gets more rows (or fewer) has a new virtual size, and Textual
        lays out the whole screen for it: ~27 ms, a few times a minute while a busy rig's queue
        grows. Where it scrolled before and still does, with columns as wide as before, its place
        and size on screen do not change: the scrollbars take the new size and the table is
        redrawn, no layout. Otherwise (a scrollbar appears or goes, a table as tall as its rows,
        wider columns) the layout happens as before."""
        was = self._sizing_from
        if (layout and was is not None and not self._in_scroll_update and self._is_mounted
                and self.show_vertical_scrollbar and was.width == self.virtual_size.width):
            # it scrolled (so its height is not its rows', even where its height is auto) and its
            # columns are as wide as before: only the number of rows changed
            shown = (self.show_horizontal_scrollbar, self.show_vertical_scrollbar)
            self._in_scroll_update = True
            try:
                self._scroll_update(self.virtual_size)  # a scrollbar shown or hidden asks for its layout
            finally:
                self._in_scroll_update = False
            if (self.show_horizontal_scrollbar, self.show_vertical_scrollbar) == shown:
                self.sized_without_layout += 1
                return super().refresh(*regions, repaint=repaint, layout=False, recompose=recompose)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _add(self, slot: str, cells: Sequence[object]) -> None:
        self.add_row(*[as_cell(c, own=i == 0) for i, c in enumerate(cells)], key=slot)

    def _on_screen(self) -> list[tuple[object, ...]] | None:
        """What each line of the view shows: (the cell objects of its row, cursor on it, hover on
        it), the header as ``()``, then ``("top", first row shown)``; None where lines are not one
        row each (fixed rows, labels)."""
        if self.cursor_type != "row" or self.fixed_rows or self._labelled_row_exists:
            return None
        header = self.header_height if self.show_header else 0
        top = int(self.scroll_y)
        cursor, hover = self.cursor_coordinate.row, self.hover_coordinate.row
        columns = [column.key for column in self.ordered_columns]
        lines: list[tuple[object, ...]] = []
        for y in range(self.size.height):
            if y < header:
                lines.append(())
                continue
            row = y - header + top
            key = self._row_locations.get_key(row)
            if key is None or key not in self._data:
                lines.append((None,))
                continue
            if self.rows[key].height != 1:
                return None
            data = self._data[key]
            lines.append((tuple(data.get(c) for c in columns), row == cursor, row == hover))
        lines.append(("top", top))
        return lines

    def _refresh_lines(self, before: list[tuple[object, ...]] | None, resized: bool) -> None:
        """Redraw the lines of the view whose row cells (compared as objects), cursor or hover
        changed: a busy snapshot changes a few rows, and a whole-table refresh redrew every line
        (through the styles cache, the compositor and the terminal). Rows added or removed, or a
        view that moved: the whole table."""
        after = self._on_screen()
        if resized or before is None or after is None or len(before) != len(after) or before[-1] != after[-1]:
            self.refresh()
            return
        width = self.size.width
        changed = [Region(0, y, width, 1) for y, (a, b) in enumerate(zip(before[:-1], after[:-1]))
                   if a[1:] != b[1:] or len(a) != len(b) or (a and not _same_cells(a[0], b[0]))]
        if changed:  # one refresh for the lines (each call posts to the message queue)
            self.refresh(*changed)

    def _put(self, slot: str, col: str, value: object) -> None:
        """``update_cell`` without its refresh: ``set_rows`` refreshes the lines that changed once
        for all its cells (a refresh per cell was a third of a busy snapshot's work in the app)."""
        self._data[RowKey(slot)][ColumnKey(col)] = as_cell(value, own=col == self.COLUMNS[0][0])
        self._cells_changed = True

    def _clear_caches(self) -> None:  # DataTable forgets its drawings (cursor, focus, hover changes): so do we
        super()._clear_caches()
        self._drawn.clear()
        self._lines.clear()
        self._restyled.clear()

    def notify_style_update(self) -> None:  # a theme or CSS change
        self._drawn.clear()
        self._lines.clear()
        self._restyled.clear()
        super().notify_style_update()

    def render_lines(self, crop: Region) -> list[Strip]:
        self._pass, self._line_style = None, self.rich_style  # once a drawing, not once a line
        self._components = {}
        try:
            return super().render_lines(crop)
        finally:
            self._pass, self._line_style, self._components = None, None, None
            self._backgrounds, self._header_rich = None, None

    @property
    def background_colors(self) -> tuple[Color, Color]:
        """Once a drawing, not once a line (DataTable reads it for every line it draws: a walk up
        every ancestor's styles)."""
        if self._components is None:
            return super().background_colors
        if self._backgrounds is None:
            self._backgrounds = super().background_colors
        return self._backgrounds

    def get_component_styles(self, *names: str) -> RenderStyles:
        """Once a drawing, not once a line: DataTable asks for its header style at every line it
        draws, and each answer is a new styles object merged from the stylesheet's."""
        memo = self._components
        if memo is None:
            return super().get_component_styles(*names)
        found = memo.get(names)
        if found is None:
            found = memo[names] = super().get_component_styles(*names)
        return found

    def render_line(self, y: int) -> Strip:
        """``DataTable.render_line`` with the widget's style worked out once a drawing (it walks
        every ancestor's styles: a tenth of a Tasks line's drawing)."""
        style = self._line_style
        if style is None or self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.get_row_height(self._header_row_key) if self.show_header else 0):
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, style)

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """DataTable's line y, kept by the cell objects its row shows and how it is drawn, not by
        its place: DataTable forgets every line whenever any cell changes or the rows move, and
        on a busy rig the recent tasks shift down at every snapshot. A row drawn before at
        another place gets that place's click metadata (``_moved``), nothing else changes."""
        if (self.cursor_type != "row" or self.fixed_columns or self.fixed_rows or self._labelled_row_exists
                or self.zebra_stripes):
            return super()._render_line(y, x1, x2, base_style)
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        columns = self.ordered_columns
        row_index = -1 if row_key is self._header_row_key else self._row_locations.get(row_key)
        data = self._data.get(row_key)
        if row_index == -1:
            cells: tuple[object, ...] = tuple(column.label for column in columns)
        elif row_index is None or data is None:
            return super()._render_line(y, x1, x2, base_style)
        else:
            cells = tuple(data.get(column.key) for column in columns)
        drawing = self._pass
        if drawing is None:  # what every line of this drawing shares
            drawing = (self.size.width, self.cursor_coordinate.row, self.hover_coordinate.row,
                       (self.show_cursor, self._show_hover_cursor, self._pseudo_class_state,
                        self.zebra_stripes, tuple(column.get_render_width(self) for column in columns)))
            if self._line_style is not None:  # within render_lines: nothing changes until it returns
                self._pass = drawing
        width, cursor_row, hover_row, how = drawing
        key = (tuple(map(id, cells)), row_index == -1, line_no, x1, x2, width, base_style, cursor_row == row_index,
               hover_row == row_index, how)
        hit = self._lines.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], cells)):
            return hit[2] if hit[1] == row_index else self._moved(hit[2], row_index)
        strip = self._draw_line(row_index, line_no, x1, x2, base_style, drawing)
        if len(self._lines) >= MEMO:
            self._lines.clear()
        self._lines[key] = (cells, row_index, strip)
        return strip

    def _draw_line(self, row_index: int, line_no: int, x1: int, x2: int, base_style: Style,
                   drawing: tuple[int, int, int, tuple[object, ...]]) -> Strip:
        """What ``DataTable._render_line`` draws for a line of a row-cursor table without fixed
        rows, fixed columns, labels or zebra stripes (``_render_line`` checks that), from the same cells
        (``_render_cell``) and styles, without what it works out again for every line it draws:
        the header's style from the stylesheet (a walk up the ancestors), the columns' widths,
        a Coordinate per cell. A test compares both drawings."""
        width, cursor_row, hover_row, how = drawing
        widths = cast("tuple[int, ...]", how[-1])
        header = row_index == -1
        row_style = self._header_style() if header else base_style
        cursor, hover = row_index == cursor_row, row_index == hover_row
        segments: list[Segment] = []
        for column_index, cell_width in enumerate(widths):
            segments += self._render_cell(row_index, column_index, row_style, cell_width, cursor, hover)[line_no]
        extend, _ = self._get_styles_to_render_cell(header, False, False, hover, cursor, self.show_cursor,
                                                    self._show_hover_cursor, False, False)
        extend = row_style + extend + Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        segments.append(Segment(" " * max(0, width - sum(widths) - self._row_label_column_width), extend))
        return Strip(line_crop(segments, x1, x2, width)).adjust_cell_length(width, base_style).simplify()

    def _header_style(self) -> Style:
        """The header row's style, once a drawing (within ``render_lines``)."""
        if self._components is None:
            return self.get_component_styles("datatable--header").rich_style
        found = self._header_rich
        if found is None:
            found = self._header_rich = self.get_component_styles("datatable--header").rich_style
        return found

    def _moved(self, strip: Strip, row: int) -> Strip:
        """``strip`` (a row's line drawn at another place) with ``row`` in its segments' click
        metadata, as DataTable draws it there."""
        restyled = self._restyled
        if len(restyled) >= MEMO:
            restyled.clear()
        segments = []
        for text, style, control in strip:
            if style is not None and style._meta is not None:
                new = restyled.get((style, row))
                if new is None:
                    meta = style.meta
                    new = style
                    if "row" in meta and not style.link:
                        new = style.clear_meta_and_links() + Style.from_meta({**meta, "row": row})
                    restyled[(style, row)] = new
                style = new
            segments.append(Segment(text, style, control))
        return Strip(segments, strip.cell_length)

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> SegmentLines:
        """DataTable's drawing of a cell, remembered by the cell object (module docstring)."""
        if column_index < 0 or row_index < -1:  # row labels: as DataTable draws them
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value: object
        if row_index == -1:  # the header: drawn again after every update, its labels never change
            value, height = self.ordered_columns[column_index].label, self.header_height
        else:
            row_key = self._row_locations.get_key(row_index)
            column_key = self._column_locations.get_key(column_index)
            if row_key is None or column_key is None:
                return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            value, height = self._data[row_key].get(column_key), self.rows[row_key].height
        key = (id(value), row_index == -1, column_index, base_style, width, cursor, hover, self.show_cursor,
               self._show_hover_cursor, self._pseudo_class_state, row_index < self.fixed_rows, height)
        hit = self._drawn.get(key)
        if hit is not None and hit[0] is value:
            return hit[2] if hit[1] == row_index else with_meta(hit[2], row_index, column_index)
        lines = self._draw_cell(value, row_index, column_index, base_style, width, cursor, hover) if height == 1 \
            else None
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        if len(self._drawn) >= MEMO:
            self._drawn.clear()
        self._drawn[key] = (value, row_index, lines)
        return lines

    def _draw_cell(self, value: object, row_index: int, column_index: int, base_style: Style, width: int,
                   cursor: bool, hover: bool) -> SegmentLines | None:
        """What ``DataTable._render_cell`` draws for a one-line cell of plain text (a Text without
        styles, or a Content) that fits its column: its pieces between the padding, styled as
        Rich's ``Styled(Padding(cell))`` styles them (pre + piece + post), without Rich's
        rendering (a third of a busy Tasks drawing: running times and waits are new cells every
        second). None: a cell it does not draw (DataTable draws it). A test compares both."""
        if row_index < 0 or row_index < self.fixed_rows or column_index < self.fixed_columns:
            return None
        pieces = _pieces(value)
        inner = width - 2 * self.cell_padding
        if pieces is None or sum(len(text) for text, _ in pieces) > inner:
            return None
        component, post = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component

        def styled(style: Style | None) -> Style | None:  # Segment.apply_style(pre, post), as Styled does
            out = pre + style if pre else style
            return (out + post if out else post) if post else out

        pad = Segment(" " * self.cell_padding, styled(None))
        line = [pad, *[Segment(text, styled(style)) for text, style in pieces]]
        used = sum(len(text) for text, _ in pieces)
        if inner > used:
            line.append(Segment(" " * (inner - used), styled(None)))
        line.append(pad)
        return [line]

    def validate_cursor_coordinate(self, value: Coordinate) -> Coordinate:
        """The cursor never rests on a blank (spare) row below the last real one."""
        value = super().validate_cursor_coordinate(value)
        last = max(0, len(self._order) - 1)
        return value if value.row <= last else Coordinate(last, value.column)

    def _reorder(self, rank: dict[str, int]) -> None:
        """Put rows in ``rank`` order (slot -> place): what ``DataTable.sort`` does, without its
        whole-table refresh (``set_rows`` redraws the lines that changed)."""
        keys = {str(key.value): key for key in self.rows}
        self._row_locations = TwoWayDict({keys[slot]: place for slot, place in rank.items()})
        self._update_count += 1

    def _restore(self, selected: str | None, old_row: int, scroll_y: float) -> None:
        """The cursor back on its row (or, its row gone, at the same place), the view unmoved."""
        if selected in self._rows:
            row = self._order.index(selected)
        else:
            row = min(max(0, old_row), max(0, len(self._order) - 1))
        self.set_reactive(DataTable.cursor_coordinate, Coordinate(row, self.cursor_column))
        self.scroll_to(y=scroll_y, animate=False, immediate=True)
        key = self.selected_key
        if key is not None and key != selected:  # its row is gone: say what is selected now
            self.post_message(DataTable.RowHighlighted(self, row, self.coordinate_to_cell_key(
                Coordinate(row, 0)).row_key))

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    @property
    def row_keys(self) -> list[str]:
        """Row keys top to bottom, as shown."""
        return list(self._order)

    def key_of(self, table_row_key: object) -> str | None:
        """Our key for a DataTable row key (from a RowSelected / RowHighlighted message)."""
        value = getattr(table_row_key, "value", table_row_key)
        return self._owner.get(str(value))

    def row_cells(self, key: str) -> list[object]:
        """The cells shown for our row ``key`` (as the DataTable holds them)."""
        return list(self.get_row(self._slot[key]))

    def action_first_row(self) -> None:
        if self._order:
            self.move_cursor(row=0)

    def action_last_row(self) -> None:
        if self._order:
            self.move_cursor(row=len(self._order) - 1)
