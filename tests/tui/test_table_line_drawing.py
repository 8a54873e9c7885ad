"""A Tasks line is drawn by KeyedTable itself (widgets/tables.py, ``_draw_line``) from the same
cells and styles as ``DataTable._render_line``, without what DataTable works out again for every
line (the header's style, the columns' widths, a Coordinate per cell). Both drawings are compared
line by line: header, cursor row, hover row, focused or not, cut sideways, at 120x40 and 80x24."""

from __future__ import annotations

import asyncio

import pytest
from taskkit import busy, hostile_names
from textual.coordinate import Coordinate
from textual.strip import Strip
from textual.widgets import DataTable
from tuikit import app_for, unfocused_then_focused, wait_ready

from galaxy_tui.widgets.tables import KeyedTable
from galaxy_tui.widgets.tasks import TasksTable


def both(table: TasksTable, y: int, x1: int, x2: int) -> tuple[list[object], list[object]]:
    base = table.rich_style
    table._lines.clear()
    ours = KeyedTable._render_line(table, y, x1, x2, base)
    table._line_cache.clear()
    table._row_render_cache.clear()
    theirs = DataTable._render_line(table, y, x1, x2, base)
    return list(ours), list(theirs)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_lines_drawn_as_datatable_draws_them(size: tuple[int, int]) -> None:
    snap = hostile_names(busy(30))
    app, _ = app_for(snap)

    async def go() -> int:
        async with app.run_test(size=size) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            width = table.size.width
            compared = 0
            async for focused in unfocused_then_focused(pilot, table, row=2, hover=Coordinate(4, 1)):
                for y in range(table.row_count + 1):
                    for x1, x2 in ((0, width), (7, 7 + width), (30, 30 + width // 2)):
                        ours, theirs = both(table, y, x1, x2)
                        assert ours == theirs, (focused, y, x1, x2)
                        compared += 1
            return compared

    assert asyncio.run(go()) > 100


def test_a_drawing_does_not_use_datatables_line_assembly() -> None:
    snap = busy(30)
    app, _ = app_for(snap)

    async def go() -> tuple[int, int]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            table._row_render_cache.clear()
            table._lines.clear()
            strips: list[Strip] = table.render_lines(table.size.region)
            return len(strips), len(table._row_render_cache)

    lines, assembled_by_datatable = asyncio.run(go())
    assert lines > 5 and assembled_by_datatable == 0
