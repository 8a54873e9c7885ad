"""The supervisor keeps running when it cannot write its snapshot, and says so (issue 11, disk full).

A writer double fails with ENOSPC on demand; the alert appears in the next snapshot that can
be written and stays for the clear window; the log gets one line per failure streak, not one a tick.
"""

from __future__ import annotations

import errno
from pathlib import Path

from engine.atomic import atomic_write_bytes
from engine.clock import FakeClock
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.history import read_history
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.snapshot import HostView, read_snapshot
from engine.supervisor.alerts import AlertEngine
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.snapshot_writer import SnapshotWriter
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.sim_rig import SimulatedRig

TH = Thresholds(snapshot_interval_s=0.5, alert_clear_s=30.0)


class FullDisk:
    """Writes like ``atomic_write_bytes`` until ``full`` is set, then raises ENOSPC as a full disk does."""

    def __init__(self) -> None:
        self.full = False
        self.refused: list[Path] = []

    def __call__(self, path: Path, data: bytes) -> None:
        if self.full:
            self.refused.append(path)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        atomic_write_bytes(path, data)


def make_writer(tmp_path: Path, disk: FullDisk, logs: list) -> tuple[SnapshotWriter, RigPaths, FileQueue]:
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="t", groups=(GroupConfig("w0", gpus=(0,)),), thresholds=TH, source=None, origin="test")
    queue = FileQueue(paths, use_inotify=False)
    writer = SnapshotWriter(cfg, paths, queue, SimulatedRig.with_count(1, clock=FakeClock(0.0)), simulated=True,
                            events_tail=None, pid=77, write_bytes=disk, log=lambda msg, **kw: logs.append((msg, kw)))
    return writer, paths, queue


def tick(writer: SnapshotWriter, alerts: AlertEngine, now: float) -> None:
    writer.maybe_write(now, [], [], set(), HostView(), (), alerts, set())


def test_enospc_keeps_the_writer_going_and_the_next_good_snapshot_carries_the_alert(tmp_path):
    disk, logs, alerts = FullDisk(), [], AlertEngine()
    writer, paths, queue = make_writer(tmp_path, disk, logs)
    try:
        tick(writer, alerts, 1.0)
        assert read_snapshot(paths.snapshot).seq == 1
        disk.full = True
        for i in range(10):  # five seconds of a full disk: no exception, the old snapshot stays
            tick(writer, alerts, 2.0 + i * 0.5)
        assert paths.snapshot in disk.refused
        assert read_snapshot(paths.snapshot).seq == 1
        failures = [kw for msg, kw in logs if msg == "cannot write the snapshot"]
        assert len(failures) == 1 and failures[0]["path"] == str(paths.snapshot)
        assert failures[0]["error"] == "No space left on device"
        disk.full = False
        tick(writer, alerts, 7.0)
        snap = read_snapshot(paths.snapshot)
        (alert,) = [a for a in snap.alerts if a.key == "snapshot_write"]
        assert alert.severity == "critical" and str(paths.snapshot) in alert.message
        assert "No space left on device" in alert.message and "10 failed write(s)" in alert.message
        assert ("snapshot written again", {"path": str(paths.snapshot), "failed_writes": 10}) in logs
        tick(writer, alerts, 7.5)  # the first tick that sees the writes succeed starts the clear window
        assert [a for a in read_snapshot(paths.snapshot).alerts if a.key == "snapshot_write"]
        tick(writer, alerts, 7.5 + TH.alert_clear_s)
        assert not [a for a in read_snapshot(paths.snapshot).alerts if a.key == "snapshot_write"]
    finally:
        queue.close()


def test_a_long_outage_logs_once_a_minute_not_every_tick(tmp_path):
    disk, logs, alerts = FullDisk(), [], AlertEngine()
    writer, _paths, queue = make_writer(tmp_path, disk, logs)
    try:
        disk.full = True
        for i in range(300):  # 150 s at two ticks a second
            tick(writer, alerts, 1.0 + i * 0.5)
        lines = [msg for msg, _ in logs if msg == "cannot write the snapshot"]
        assert len(lines) == 3  # at 1 s, 61 s, 121 s
    finally:
        queue.close()


def test_supervisor_survives_a_snapshot_path_it_cannot_replace(tmp_path):
    """A real failure, no double: a directory where the snapshot file belongs makes os.replace fail."""
    clock = FakeClock(1_000.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="t", groups=(GroupConfig("w1", gpus=(0,)),), thresholds=TH, source=None, origin="test")
    queue = FileQueue(paths, use_inotify=False)
    logs: list = []
    sup = Supervisor(cfg, paths, queue, SimulatedRig.with_count(1, clock=clock), FakeLauncher(), simulated=True,
                     pid=4242, log=lambda msg, **kw: logs.append((msg, kw)))
    try:
        sup.start(clock.now())
        (paths.snapshot / "blocker").mkdir(parents=True)
        for _ in range(4):
            clock.advance(0.5)
            sup.tick(clock.now())
        assert any(msg == "cannot write the snapshot" for msg, _ in logs)
        (paths.snapshot / "blocker").rmdir()
        paths.snapshot.rmdir()
        clock.advance(0.5)
        sup.tick(clock.now())
        snap = read_snapshot(paths.snapshot)
        assert snap is not None and any(a.key == "snapshot_write" for a in snap.alerts)
        assert read_history(paths.state / "history.json") is not None
    finally:
        queue.close()
