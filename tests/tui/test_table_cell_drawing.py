"""A one-line plain cell is drawn by KeyedTable itself (widgets/tables.py, ``_draw_cell``), not by
Rich's Padding and Styled (a third of a busy Tasks drawing: running times and waits are new cells
every second). Both drawings are compared per cell, as a line shows them (merged runs of a style):
plain, empty, exactly fitting and styled (Content) cells, under the cursor, the hover, focused or
not; cells it does not draw (too wide, wide characters, styled Text) are DataTable's."""

from __future__ import annotations

import asyncio

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from taskkit import busy, hostile_names
from textual.content import Content
from textual.coordinate import Coordinate
from textual.strip import Strip
from textual.widgets import DataTable
from tuikit import app_for, unfocused_then_focused, wait_ready

from galaxy_tui.widgets.tables import _pieces
from galaxy_tui.widgets.tasks import TasksTable


def shown(lines: list[list[Segment]]) -> list[list[Segment]]:
    return [list(Strip(line).simplify()) for line in lines]


def test_cells_drawn_as_datatable_draws_them() -> None:
    snap = hostile_names(busy(12))
    app, _ = app_for(snap)

    async def go() -> tuple[int, int]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            extra = [Text("", end="", no_wrap=True), Text("exactly", end="", no_wrap=True),
                     Content.styled("failed", "$error bold"), Content.assemble(("a", "bold"), "b", ("c", "$accent")),
                     Content("")]
            ours = theirs = 0
            async for _focused in unfocused_then_focused(pilot, table, row=1, hover=Coordinate(2, 0)):
                base = table.rich_style
                for row in range(len(table.row_keys)):
                    key = table._row_locations.get_key(row)
                    for col, column in enumerate(table.ordered_columns):
                        values = [table._data[key][column.key]] + (extra if row < 3 else [])
                        for value in values:
                            table._data[key][column.key] = value
                            table._update_count += 1  # DataTable's cell cache: drawn again
                            for width in (column.get_render_width(table), 9):
                                for cursor, hover in ((False, False), (True, False), (False, True), (True, True)):
                                    drawn = table._draw_cell(value, row, col, base, width, cursor, hover)
                                    if drawn is None:
                                        theirs += 1
                                        continue
                                    table._drawn.clear()
                                    table._cell_render_cache.clear()  # keyed without the width
                                    expected = DataTable._render_cell(table, row, col, base, width, cursor, hover)
                                    assert shown(drawn) == shown(expected), (value, row, col, width, cursor, hover)
                                    ours += 1
            return ours, theirs

    ours, theirs = asyncio.run(go())
    assert ours > 500 and theirs > 0


def test_cells_it_leaves_to_datatable() -> None:
    assert _pieces(Text("rocket 🚀", end="", no_wrap=True)) is None  # two cells wide
    assert _pieces(Text("a\tb", end="", no_wrap=True)) is None
    assert _pieces(Text("x", style=Style(bold=True), end="", no_wrap=True)) is None
    assert _pieces(Text.from_markup("[b]x[/b]")) is None
    assert _pieces(42) is None
    assert _pieces(Text("[bold]loud[/]", end="", no_wrap=True)) == [("[bold]loud[/]", None)]  # data, not markup
