"""The file source hands the dashboard at most one new snapshot per ``min_interval_s`` (its biggest cost)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from tuikit import canned

from engine.snapshot import write_snapshot
from galaxy_tui.source import FileSnapshotSource


def bump(path: Path, snap, seq: int) -> None:  # type: ignore[no-untyped-def]
    write_snapshot(path, replace(snap, seq=seq, taken_at=snap.taken_at + seq))
    ns = path.stat().st_mtime_ns + seq * 1_000_000  # a distinct mtime even within one clock tick
    os.utime(path, ns=(ns, ns))


def test_a_newer_snapshot_waits_for_the_interval_then_the_newest_is_read(tmp_path: Path) -> None:
    now = [100.0]
    path = tmp_path / "snapshot.json"
    snap = canned("busy5")
    bump(path, snap, 1)
    src = FileSnapshotSource(path, min_interval_s=1.0, clock=lambda: now[0])
    assert src.poll().snapshot.seq == 1
    bump(path, snap, 2)
    now[0] = 100.5
    assert src.poll() is None  # too soon: not even read
    bump(path, snap, 3)
    now[0] = 101.0
    assert src.poll().snapshot.seq == 3  # the newest, seq 2 was never parsed
    now[0] = 105.0
    assert src.poll() is None  # nothing new


def test_without_an_interval_every_change_is_read(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    snap = canned("busy5")
    src = FileSnapshotSource(path, clock=lambda: 0.0)
    bump(path, snap, 1)
    assert src.poll().snapshot.seq == 1
    bump(path, snap, 2)
    assert src.poll().snapshot.seq == 2
