"""TUI test helpers: an app fed canned snapshots, a recording sink, a clock frozen at taken_at."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.commands import RecordingCommandSink
from engine.snapshot import Snapshot
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource, load_snapshot_file

FIXTURES = Path(__file__).parent / "fixtures"


def canned(name: str) -> Snapshot:
    return load_snapshot_file(FIXTURES / f"{name}.json")


def make_app(name: str, *, read_only: bool = False, sink: RecordingCommandSink | None = None,
             root: Path | None = None) -> tuple[GalaxyApp, RecordingCommandSink]:
    snap = canned(name)
    sink = sink if sink is not None else RecordingCommandSink()
    app = GalaxyApp(CannedSnapshotSource([snap]), sink, read_only=read_only, clock=lambda: snap.taken_at,
                    root=root)
    return app, sink


async def wait_ready(pilot) -> None:  # type: ignore[no-untyped-def]
    """Until the first snapshot is on screen (the poll runs in a worker thread)."""
    app = pilot.app
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if app.snapshot is not None:
            return
    raise AssertionError("the dashboard never rendered its first snapshot")
