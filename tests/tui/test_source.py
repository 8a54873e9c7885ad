"""The file-backed snapshot source and the stale/recover logic the top bar shows."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from tuikit import canned, wait_ready

from engine.commands import RecordingCommandSink
from engine.snapshot import write_snapshot
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import FileSnapshotSource, staleness
from galaxy_tui.widgets.status import TopBar


def test_no_file_then_a_snapshot_then_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "state" / "snapshot.json"
    path.parent.mkdir()
    src = FileSnapshotSource(path)
    first = src.poll()
    assert first is not None and first.snapshot is None and "no snapshot yet" in (first.error or "")
    assert src.poll() is None
    snap = canned("busy5")
    write_snapshot(path, snap)
    got = src.poll()
    assert got is not None and got.snapshot == snap
    assert src.poll() is None  # same mtime and size: not even re-read
    later = replace(snap, seq=snap.seq + 1, taken_at=snap.taken_at + 0.5)
    write_snapshot(path, later)
    os.utime(path, ns=(path.stat().st_mtime_ns + 1_000_000, path.stat().st_mtime_ns + 1_000_000))
    got = src.poll()
    assert got is not None and got.snapshot is not None and got.snapshot.seq == later.seq


def test_a_malformed_snapshot_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text('{"version": 1, "seq": "x"}')
    got = FileSnapshotSource(path).poll()
    assert got is not None and got.snapshot is None and str(path) in (got.error or "")


def test_a_dead_supervisor_pid_makes_it_stale(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "snapshot.json"
    snap = replace(canned("busy5"), supervisor_pid=dead.pid)
    write_snapshot(path, snap)
    got = FileSnapshotSource(path).poll()
    assert got is not None and got.supervisor_alive is False
    assert staleness(snap, snap.taken_at, got.supervisor_alive) == snap.taken_at


def test_staleness_by_age() -> None:
    snap = canned("busy5")
    assert staleness(snap, snap.taken_at + 2.9, None) is None
    assert staleness(snap, snap.taken_at + 3.5, True) == snap.taken_at
    assert staleness(None, snap.taken_at + 100, None) is None


def test_dashboard_says_stale_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    snap = replace(canned("busy5"), supervisor_pid=os.getpid())  # a live writer: only the clock makes it stale
    write_snapshot(path, snap)
    now = {"t": snap.taken_at + 1}
    app = GalaxyApp(FileSnapshotSource(path), RecordingCommandSink(), clock=lambda: now["t"], poll_interval=0.05)

    def bar_text() -> str:
        return str(app.query_one(TopBar).render())

    async def go() -> tuple[str, str, str]:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_ready(pilot)
            fresh = bar_text()
            now["t"] = snap.taken_at + 10  # the supervisor went quiet
            app.poll_source()  # what the interval timer does; no waiting on it
            await pilot.pause()
            stale = bar_text()
            newer = replace(snap, seq=snap.seq + 1, taken_at=snap.taken_at + 9.5)
            write_snapshot(path, newer)
            os.utime(path, ns=(path.stat().st_mtime_ns + 5_000_000,) * 2)
            for _ in range(100):
                await app.workers.wait_for_complete()
                await pilot.pause(0.05)
                if app.snapshot is not None and app.snapshot.seq == newer.seq:
                    break
            return fresh, stale, bar_text()

    fresh, stale, back = asyncio.run(go())
    assert "live" in fresh and "STALE" not in fresh
    assert "STALE since" in stale
    assert "STALE" not in back and "live" in back
