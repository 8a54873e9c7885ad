"""Table cells are drawn once per content and reused when their row moves (widgets/tables.py):
a click still selects the row under the pointer, and the drawing is the same as a fresh one."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from taskkit import EVENTS, busy, many_recent
from tuikit import wait_ready

from engine.commands import RecordingCommandSink
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource, SnapshotReading
from galaxy_tui.widgets.events import EventsPanel
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



def test_lines_kept_across_busy_snapshots_match_a_fresh_drawing() -> None:
    """Tasks lines are kept by the cells they show (KeyedTable._render_line) and events lines by
    their text (EventsPanel): as tasks finish, rows shift and cells change, events arrive and the
    cursor moves, what is on screen stays what a drawing from scratch shows."""
    first = busy(30)
    app = GalaxyApp(CannedSnapshotSource([first]), RecordingCommandSink(), clock=lambda: first.taken_at)

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            events = app.query_one(EventsPanel)
            for step in range(1, 5):
                done = many_recent(30, first=step * 2)  # newer tasks on top: every row shifts down
                news = tuple(replace(e, at=e.at + step) for e in EVENTS[step:]) + EVENTS[:step]
                snap = replace(first, taken_at=first.taken_at + step, recent=done + first.recent[30:], events=news)
                app.apply_reading(SnapshotReading(snap, None, True))
                if step == 2:
                    table.focus()
                    await pilot.press("down", "down")
                await pilot.pause()
                shown = app.export_screenshot()
                table._drawn.clear()
                table._clear_caches()
                table.refresh()
                events._strips.clear()
                events.refresh()
                await pilot.pause()
                assert app.export_screenshot() == shown, step

    asyncio.run(go())
