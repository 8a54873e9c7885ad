"""Keyed DataTables that update in place (update_cell by key) instead of rebuilding."""

from __future__ import annotations

from typing import Sequence

from textual.widgets import DataTable

Row = tuple[str, Sequence[object]]  # (row key, cells)


class KeyedTable(DataTable):
    """A DataTable fed whole row lists: unchanged rows cost nothing, the cursor keeps its row."""

    COLUMNS: tuple[tuple[str, str, int | None], ...] = ()  # (key, label, width)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self._rows: dict[str, tuple[object, ...]] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for key, label, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    def set_rows(self, rows: Sequence[Row]) -> None:
        order = [k for k, _ in rows]
        if order == self._order:
            for key, cells in rows:
                cells_t = tuple(cells)
                old = self._rows.get(key)
                if old != cells_t:
                    for (col, _, _), new, prev in zip(self.COLUMNS, cells_t, old or (None,) * len(cells_t)):
                        if new != prev:
                            self.update_cell(key, col, new)
                    self._rows[key] = cells_t
            return
        selected = self.selected_key
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._rows = {k: tuple(c) for k, c in rows}
        self._order = order
        if selected in self._rows:
            self.move_cursor(row=order.index(selected), animate=False)

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]
