"""A snapshot redraws only the Tasks lines whose row changed (KeyedTable._refresh_lines): a row
whose cells, cursor or hover did not change keeps its drawing; what is on screen stays what a
drawing from scratch shows, with the view scrolled, rows shifting, the cursor moving and a sort."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from taskkit import busy, many_recent
from tuikit import app_for, wait_ready

from engine.snapshot import Snapshot
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import SnapshotReading
from galaxy_tui.widgets.tasks import TasksTable


def _app(snap: Snapshot) -> GalaxyApp:
    return app_for(snap)[0]


async def _same_as_fresh(app: GalaxyApp, table: TasksTable, pilot, step: object) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    shown = app.export_screenshot()
    table._drawn.clear()
    table._clear_caches()
    table.refresh()
    await pilot.pause()
    assert app.export_screenshot() == shown, step


def test_one_changed_row_redraws_one_line() -> None:
    first = busy(30)
    app = _app(first)

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            await pilot.pause()
            table._repaint_regions.clear()
            row = table.row_keys.index(first.recent[3].task_id)
            renamed = tuple(replace(t, name="renamed") if i == 3 else t for i, t in enumerate(first.recent))
            table.show(replace(first, recent=renamed))
            regions = list(table._repaint_regions)
            header = table.header_height
            assert [(r.y, r.height) for r in regions] == [(table.content_offset.y + header + row, 1)]
            await _same_as_fresh(app, table, pilot, "renamed")

    asyncio.run(go())


def test_lines_after_scrolls_shifts_cursor_and_sort_match_a_fresh_drawing() -> None:
    first = busy(60)
    app = _app(first)

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            table.focus()
            await pilot.pause()
            for step in range(1, 7):
                done = many_recent(60, first=step * 3)  # newer tasks on top: rows shift, some leave
                snap = replace(first, taken_at=first.taken_at + step, recent=done + first.recent[60:],
                               running=first.running[step % 2:])
                if step == 2:
                    table.scroll_to(y=7, animate=False, immediate=True)  # the operator scrolled down
                if step == 3:
                    await pilot.press("down", "down", "down")
                if step == 5:
                    table.set_sort("name")
                app.apply_reading(SnapshotReading(snap, None, True))
                await _same_as_fresh(app, table, pilot, step)

    asyncio.run(go())
