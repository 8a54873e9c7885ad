"""Layout snapshots of the Tasks and Events views, the live task detail and queued rows, at
80x24 and 120x40 (canned snapshots, clock frozen at taken_at; task names full of markup).

Update after an intended change: ``pytest tests/tui/test_tasks_events_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from taskkit import busy, hostile_names, queue_with, with_events
from tuikit import wait_ready

from engine.commands import RecordingCommandSink
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource
from galaxy_tui.widgets.tasks import TasksTable

SIZES = [(80, 24), (120, 40)]


def _app(root: Path | None = None) -> GalaxyApp:
    snap = with_events(hostile_names(busy(12)))
    return GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at, root=root)


def _keys(*keys: str):  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_ready(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
    return run


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_tasks_and_events_with_markup_names(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_app(), terminal_size=size, run_before=wait_ready)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_tasks_filtered_and_sorted(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_app(), terminal_size=size, run_before=_keys("slash", *"llm", "enter", "o", "o"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_events_full_screen_with_claims_shown(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_app(), terminal_size=size, run_before=_keys("l", "f"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_live_task_detail_of_a_running_task(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_ready(pilot)
        pilot.app.query_one(TasksTable).focus()
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_queued_rows_from_the_queue(snap_compare, size, tmp_path) -> None:  # type: ignore[no-untyped-def]
    queue_with(tmp_path, 240)

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_ready(pilot)
        table = pilot.app.query_one(TasksTable)
        for _ in range(300):
            if table.queued_page_data is not None:
                break
            await pilot.app.workers.wait_for_complete()
            await pilot.pause(0.02)
        table.focus()
        await pilot.press("end")
        for _ in range(100):  # the cursor on the last row and the view scrolled to it
            await pilot.pause()
            if table.cursor_row == len(table.row_keys) - 1 and table.scroll_y == table.max_scroll_y:
                break

    assert snap_compare(_app(tmp_path), terminal_size=size, run_before=run)
