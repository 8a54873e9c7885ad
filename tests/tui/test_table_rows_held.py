"""A busy Tasks table keeps its row count while its length goes up and down (widgets/tables.py,
``KeyedTable._keep``): each row added or removed is a layout pass of the whole screen. Blank rows
are given back once the table has had more than it keeps for SHRINK_AFTER_S, or when the operator
filters or sorts."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from taskkit import T0, busy
from tuikit import wait_ready

from engine.commands import RecordingCommandSink
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource
from galaxy_tui.widgets.tables import MIN_SPARE, SHRINK_AFTER_S
from galaxy_tui.widgets.tasks import TasksTable


def test_rows_are_held_while_the_table_shortens_then_given_back() -> None:
    long, short = busy(40, taken_at=T0), busy(3, taken_at=T0)
    app = GalaxyApp(CannedSnapshotSource([long]), RecordingCommandSink(), clock=lambda: T0)

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            full = table.row_count
            shown = len(table.row_keys)
            assert full >= shown > MIN_SPARE
            for dt in (1.0, 10.0, SHRINK_AFTER_S - 1):
                table.show(replace(short, taken_at=T0 + dt))
                assert table.row_count == full, dt  # blank rows at the bottom: no row removed
                table.show(replace(long, taken_at=T0 + dt + 0.5))  # and back: no row added
                assert table.row_count == full, dt
                assert table.row_keys == [k for k in table.row_keys if k]  # the blanks are not rows of ours
            table.show(replace(short, taken_at=T0 + SHRINK_AFTER_S))  # short since T0 + SHRINK_AFTER_S - 1 only
            assert table.row_count == full
            table.show(replace(short, taken_at=T0 + 2 * SHRINK_AFTER_S))
            assert table.row_count == max(MIN_SPARE, len(table.row_keys)) + len(table.row_keys) < full
            table.show(replace(long, taken_at=T0 + 2 * SHRINK_AFTER_S + 1))
            grown = table.row_count
            table.set_filter("done")  # the operator asked: compact at once
            assert table.row_count == len(table.row_keys) < grown

    asyncio.run(go())
