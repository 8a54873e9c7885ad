"""`s` on a drained (stopped) worker, end to end in one process: the dashboard sends `resume`
through the real command folder and the real Supervisor (fake launcher, simulated rig)
spawns the worker again. What `s` relies on: states.py's resume of a stopped/fatal worker."""

from __future__ import annotations

import asyncio

from tuikit import wait_ready

from engine.clock import FakeClock
from engine.commands import CommandKind, FileCommandSink, make_command
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.snapshot import read_snapshot
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.sim_rig import SimulatedRig
from engine.workerstate import WorkerStatus, write_json_dataclass
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource

TH = Thresholds(restart_backoff_s=1.0, max_fast_crashes=3, fast_crash_s=10.0, snapshot_interval_s=0.5,
                temp_hot_c=83.0, temp_resume_c=75.0, shutdown_grace_s=5.0)


def test_s_starts_a_drained_worker_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(1_000.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="test", groups=(GroupConfig("w0", gpus=(0,)), GroupConfig("w1", gpus=(1,))),
                       thresholds=TH, source=None, origin="test config")
    queue = FileQueue(paths, use_inotify=False)
    launcher = FakeLauncher()
    sup = Supervisor(cfg, paths, queue, SimulatedRig.with_count(2, clock=clock), launcher, simulated=True,
                     pid=4242, log=lambda msg, **kw: None)
    try:
        sup.start(clock.now())

        def step(s: float = 0.5) -> None:
            clock.advance(s)
            sup.tick(clock.now())

        for p in launcher.spawned:
            write_json_dataclass(paths.worker_status(p.spec.worker_id),
                                 WorkerStatus(worker_id=p.spec.worker_id, pid=p.pid, gpus=(), state="idle",
                                              heartbeat_at=clock.now()))
        step()
        FileCommandSink(paths.commands).send(make_command(CommandKind.DRAIN, "w1", source="test", now=clock.now()))
        step()
        launcher.for_worker("w1")[0].exit(0)
        step()
        snap = read_snapshot(paths.snapshot)
        assert snap is not None and next(w for w in snap.workers if w.worker_id == "w1").state == "stopped"

        app = GalaxyApp(CannedSnapshotSource([snap]), FileCommandSink(paths.commands), clock=lambda: snap.taken_at)

        async def press() -> None:
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_ready(pilot)
                await pilot.press("down", "s")  # GPU 1: worker w1, stopped
                await pilot.pause()
        asyncio.run(press())
        step()
        ack = next(a for a in read_snapshot(paths.snapshot).acks if a.kind == "resume")  # type: ignore[union-attr]
        assert ack.target == "w1" and ack.outcome == "ok" and ack.source and ack.source.startswith("tui ")
        assert len(launcher.for_worker("w1")) == 2, "the drained worker was spawned again"
        assert sup.slots["w1"].record.state.value == "starting"
    finally:
        queue.close()
