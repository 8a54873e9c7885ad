"""The top bar says "store unreachable since HH:MM:SS" when the supervisor's snapshot does."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

from tuikit import canned, wait_ready

from engine.commands import RecordingCommandSink
from engine.snapshot import write_snapshot
from galaxy_tui.app import GalaxyApp
from galaxy_tui.render import fmt_clock
from galaxy_tui.source import FileSnapshotSource
from galaxy_tui.widgets.status import TopBar


def test_top_bar_shows_since_when_the_store_is_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    base = replace(canned("busy5"), supervisor_pid=os.getpid())
    down = replace(base, store_unreachable_since=base.taken_at - 42.0)
    write_snapshot(path, down)
    app = GalaxyApp(FileSnapshotSource(path), RecordingCommandSink(), clock=lambda: base.taken_at + 1,
                    poll_interval=0.05)

    async def go() -> str:
        async with app.run_test(size=(140, 30)) as pilot:
            await wait_ready(pilot)
            return str(app.query_one(TopBar).render())

    bar = asyncio.run(go())
    assert f"store unreachable since {fmt_clock(down.store_unreachable_since)}" in bar
    assert "live" in bar  # the supervisor still writes: the picture is current, the store is not
