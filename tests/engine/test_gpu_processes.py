"""Per-process VRAM from NVML (the in-repo pynvml double) to the snapshot: who holds what, galaxy or not."""

from __future__ import annotations

from fake_pynvml import FakeGpu, FakeNvml

from engine.clock import FakeClock
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.snapshot import read_snapshot
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.nvml import NvmlProbe

MIB = 1024 * 1024


def test_processes_reach_the_snapshot_with_their_owner_and_na_vram(tmp_path):
    clock = FakeClock(1_000.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="t", groups=(GroupConfig("w0", gpus=(0,)),),
                       thresholds=Thresholds(snapshot_interval_s=0.5), source=None, origin="test")
    card = FakeGpu(mem_used=3596 * MIB)
    probe = NvmlProbe(nvml_module=FakeNvml([card]), process_name=lambda pid: {7777: "Xorg"}.get(pid, f"proc{pid}"))
    queue = FileQueue(paths, use_inotify=False)
    launcher = FakeLauncher(first_pid=40_000)
    sup = Supervisor(cfg, paths, queue, probe, launcher, pid=4242)
    try:
        sup.start(clock.now())
        worker_pid = launcher.spawned[0].pid
        card.compute = [(worker_pid, 3072 * MIB), (9999, 512 * MIB)]
        card.graphics = [(7777, None)]  # the driver does not say (WDDM-like)
        clock.advance(0.5)
        sup.tick(clock.now())
        (gpu,) = read_snapshot(paths.snapshot).gpus
        procs = {p.pid: (p.name, p.used_mb, p.galaxy) for p in gpu.processes}
        assert procs == {worker_pid: (f"proc{worker_pid}", 3072.0, True), 9999: ("proc9999", 512.0, False),
                         7777: ("Xorg", None, False)}
        assert gpu.mem_galaxy_mb == 3072.0 and gpu.mem_other_mb == 512.0
    finally:
        queue.close()
