"""Keyed DataTables that update in place and leave the view where the operator put it.

Why: a live table gets new rows several times a second. Rebuilding it (``clear`` + ``add_row``)
and moving the cursor back to its row scrolled the view to the cursor on every snapshot, so
running and failed rows slid out of sight and mouse-wheel scrolling snapped back. Here rows
are diffed by key (``remove_row`` / ``add_row`` / ``update_cell``), reordered with
``DataTable.sort``, the cursor follows its row key without scrolling, and the scroll offset
is kept. Text cells are ``rich.text.Text``: task names like ``job[intro]`` are data, never markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.widgets import DataTable

Row = tuple[str, Sequence[object]]  # (row key, cells)


def as_cell(value: object) -> object:
    """A str is shown literally (DataTable would parse it as markup); anything else as is."""
    return Text(value, end="", no_wrap=True) if isinstance(value, str) else value


class KeyedTable(DataTable):
    """A DataTable fed whole row lists: unchanged rows cost nothing, the view does not move."""

    COLUMNS: tuple[tuple[str, str, int | None], ...] = ()  # (key, label, width)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "first_row", "First", show=False),
        Binding("end", "last_row", "Last", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._rows: dict[str, tuple[object, ...]] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for key, label, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    def set_rows(self, rows: Sequence[Row]) -> None:
        order = [k for k, _ in rows]
        wanted = {k: tuple(c) for k, c in rows}
        if len(wanted) != len(order):
            raise ValueError(f"{type(self).__name__}: duplicate row keys")
        selected, old_row = self.selected_key, self.cursor_row
        scroll_y = self.scroll_y
        gone = [k for k in self._order if k not in wanted]
        added = [k for k in order if k not in self._rows]
        if gone or added:
            # Park the cursor at the top without its watcher (which scrolls to it); it goes back
            # to its row below. Removing rows could otherwise clamp it and drag the view along.
            self.set_reactive(DataTable.cursor_coordinate, Coordinate(0, self.cursor_column))
        for key in gone:
            self.remove_row(key)
            del self._rows[key]
        for key in added:
            self.add_row(*(as_cell(c) for c in wanted[key]), key=key)
            self._rows[key] = wanted[key]
        for key, cells in wanted.items():
            old = self._rows[key]
            if old != cells:
                for (col, _, _), new, prev in zip(self.COLUMNS, cells, old):
                    if new != prev:
                        self.update_cell(key, col, as_cell(new))
                self._rows[key] = cells
        current = [k for k in self._order if k in wanted] + added
        if current != order:
            self._reorder({k: i for i, k in enumerate(order)})
        self._order = order
        if gone or added or current != order:
            self._restore(selected, old_row, scroll_y)

    def _reorder(self, rank: dict[str, int]) -> None:
        """Put rows in ``rank`` order. DataTable.sort sees only cell values, so a row is known by
        the identity of its first stored cell (each row's own object); a clash rebuilds instead."""
        first = {id(self.get_row(k)[0]): k for k in rank}
        if len(first) == len(rank):
            self.sort(key=lambda cells: rank[first[id(cells[0])]])
            return
        self.clear()
        for key in sorted(rank, key=rank.__getitem__):
            self.add_row(*(as_cell(c) for c in self._rows[key]), key=key)

    def _restore(self, selected: str | None, old_row: int, scroll_y: float) -> None:
        """The cursor back on its row (or, its row gone, at the same place), the view unmoved."""
        if selected in self._rows:
            row = self._order.index(selected)
        else:
            row = min(max(0, old_row), max(0, len(self._order) - 1))
        self.set_reactive(DataTable.cursor_coordinate, Coordinate(row, self.cursor_column))
        self.refresh()
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

    def action_first_row(self) -> None:
        if self._order:
            self.move_cursor(row=0)

    def action_last_row(self) -> None:
        if self._order:
            self.move_cursor(row=len(self._order) - 1)
