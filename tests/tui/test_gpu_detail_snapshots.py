"""Layout snapshots of the GPU detail screen at 120x40 and 80x24 (canned snapshot + ten minutes of history).

The screen fills the terminal, so changes to the panels behind it do not move these pictures.
Update after an intended change: ``pytest tests/tui/test_gpu_detail_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from test_gpu_detail import ten_minutes_of_history, with_processes
from tuikit import app_for, canned, wait_ready

from galaxy_tui.screens.gpu_detail import GpuDetailScreen


async def _open_detail(pilot) -> None:  # type: ignore[no-untyped-def]
    await wait_ready(pilot)
    await pilot.press("enter")
    app = pilot.app
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if isinstance(app.screen, GpuDetailScreen) and app.screen.history is not None:
            return
    raise AssertionError("the GPU detail screen never loaded its history")


def test_gpu_detail_120x40(snap_compare, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ten_minutes_of_history(tmp_path)
    app, _ = app_for(with_processes(canned("busy5")), root=tmp_path)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_open_detail)


def test_gpu_detail_80x24(snap_compare, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ten_minutes_of_history(tmp_path)
    app, _ = app_for(with_processes(canned("busy5")), root=tmp_path)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_open_detail)
