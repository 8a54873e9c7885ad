"""Table cells are drawn once per content and reused when their row moves (widgets/tables.py):
a click still selects the row under the pointer, and the drawing is the same as a fresh one."""

from __future__ import annotations

import asyncio

from taskkit import busy
from tuikit import wait_ready

from engine.commands import RecordingCommandSink
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource
from galaxy_tui.widgets.tasks import TasksTable


def _app() -> GalaxyApp:
    snap = busy(30)
    return GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at)


def test_a_click_after_rows_moved_selects_the_row_clicked() -> None:
    app = _app()

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            table.focus()
            await pilot.pause()
            before = list(table.row_keys)
            table.set_sort("name")  # every row moves; their cells were drawn for other rows
            await pilot.pause()
            after = list(table.row_keys)
            assert sorted(after) == sorted(before) and after != before
            for row in (3, 1, 5):
                await pilot.click(TasksTable, offset=(3, 2 + row))  # the border, then the header
                await pilot.pause()
                assert table.cursor_row == row and table.selected_key == after[row]
            # what is on screen is what a table drawing every cell afresh shows
            shown = app.export_screenshot()
            table._drawn.clear()
            table._clear_caches()
            table.refresh()
            await pilot.pause()
            assert app.export_screenshot() == shown

    asyncio.run(go())
