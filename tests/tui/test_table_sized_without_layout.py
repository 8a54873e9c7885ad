"""A Tasks table that already scrolls and gets more rows takes its new virtual size without a
layout of the whole screen (widgets/tables.py, ``KeyedTable.refresh``): its place and size do not
change, its scrollbar takes the new size. What is on screen is what a layout would show, and the
new rows can be reached; where the scrollbar appears, the layout happens as before."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace

from rich.console import Console
from taskkit import T0, busy
from textual.app import App, ComposeResult
from tuikit import wait_ready

from engine.commands import RecordingCommandSink
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource
from galaxy_tui.widgets.tables import KeyedTable
from galaxy_tui.widgets.tasks import TasksTable


def drawn(app: GalaxyApp) -> str:
    """The whole screen as the terminal gets it (colours and all)."""
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=120, height=40,
                      legacy_windows=False)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert update is not None
    return update.render_segments(console)


def grow(first: int, then: int) -> tuple[int, str, str, bool, bool]:
    """(virtual size changes taken without a layout, the screen after the rows came, the same
    screen after a full layout, the new last row shown after End, the scrollbar's size)."""
    app = GalaxyApp(CannedSnapshotSource([busy(first, taken_at=T0)]), RecordingCommandSink(), clock=lambda: T0)

    async def go() -> tuple[int, str, str, bool, bool]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            before = table.sized_without_layout
            table.show(replace(busy(then), taken_at=T0 + 1))
            for _ in range(3):
                await pilot.pause()
            taken = table.sized_without_layout - before
            after = drawn(app)
            app.screen.refresh(layout=True)  # what Textual did at every change of the virtual size
            for _ in range(3):
                await pilot.pause()
            laid_out = drawn(app)
            bar = table.vertical_scrollbar.window_virtual_size == table.virtual_size.height
            table.focus()
            await pilot.press("end")
            await pilot.pause()
            last = table.row_keys[-1]
            shown = table.cursor_row == len(table.row_keys) - 1 and table.is_valid_row_index(table.cursor_row) \
                and table.scroll_y == table.max_scroll_y and last in table._entries
            return taken, after, laid_out, bool(shown), bar

    return asyncio.run(go())


def test_a_scrolling_table_grows_without_a_layout() -> None:
    taken, after, laid_out, end_shows_last, bar = grow(20, 30)
    assert taken >= 1
    assert after == laid_out
    assert end_shows_last and bar


def test_a_table_whose_scrollbar_appears_is_laid_out() -> None:
    taken, after, laid_out, end_shows_last, bar = grow(0, 20)  # busy5's rows fit; 20 more do not
    assert taken == 0
    assert after == laid_out
    assert end_shows_last and bar


class Short(KeyedTable):
    """A table as tall as its rows, up to 6 lines (as the Escalations panel)."""

    DEFAULT_CSS = "Short { height: auto; max-height: 6; }"
    COLUMNS = (("name", "name", 10),)


class Bench(App[None]):
    def compose(self) -> ComposeResult:
        yield Short()


def test_a_table_as_tall_as_its_rows_still_grows() -> None:
    app = Bench()

    async def go() -> list[tuple[int, int]]:
        async with app.run_test(size=(40, 20)) as pilot:
            table = app.query_one(Short)
            seen = []
            for n in (2, 4, 12, 14, 3):  # taller, at its max (it scrolls), still more, back down
                table.set_rows([(f"r{i}", (f"task {i}",)) for i in range(n)])
                for _ in range(3):
                    await pilot.pause()
                seen.append((table.size.height, table.sized_without_layout))
            return seen

    seen = asyncio.run(go())
    assert [height for height, _ in seen] == [3, 5, 6, 6, 4]  # the header and its rows, at most 6
    assert [taken for _, taken in seen] == [0, 0, 0, 1, 1]  # only 12 -> 14 rows, while it scrolls
