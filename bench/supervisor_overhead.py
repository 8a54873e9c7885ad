"""Supervisor overhead: its own CPU (percent of one core) with 8 simulated GPUs, 8 idle
workers and 2 snapshots a second, plus the cost of one telemetry sample. Target < 3%.

Runs the supervisor in a child process (the same ``Supervisor`` that ``galaxy supervise
--sim`` runs) and measures that process alone with psutil, workers excluded. Workers are
the real ``galaxy worker`` when the CLI has it, else the protocol stand-in from the tests.

    .venv/bin/python bench/supervisor_overhead.py [--seconds 20] [--warmup 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def has_real_worker() -> bool:
    r = subprocess.run([sys.executable, "-m", "engine.cli.main", "worker", "--help"], cwd=REPO,
                       capture_output=True, text=True)
    return r.returncode == 0


def child(root: Path, seconds: float, real_worker: bool) -> None:
    from engine.clock import SystemClock
    from engine.config import GalaxyConfig, GroupConfig, Thresholds
    from engine.paths import RigPaths
    from engine.queue.filequeue import FileQueue
    from engine.supervisor.launcher import SubprocessLauncher, worker_argv
    from engine.supervisor.sim_driver import SimRigDriver
    from engine.supervisor.supervisor import Supervisor
    from engine.telemetry.host import HostProbe
    from engine.telemetry.sim_rig import SimulatedRig

    standin = str(REPO / "tests" / "integration" / "standin_worker.py")

    def standin_argv(group, root, **_kw):  # type: ignore[no-untyped-def]
        return (sys.executable, standin, "--root", str(root), "--worker-id", group.name,
                "--gpu", group.cuda_visible_devices)

    clock = SystemClock()
    paths = RigPaths(root).ensure()
    groups = tuple(GroupConfig(f"gpu{i}", gpus=(i,)) for i in range(8))
    cfg = GalaxyConfig(rig="bench", groups=groups, thresholds=Thresholds(snapshot_interval_s=0.5), origin="bench")
    rig = SimulatedRig.with_count(8, clock=clock)
    queue = FileQueue(paths)
    sup = Supervisor(cfg, paths, queue, rig, SubprocessLauncher(), host=HostProbe(root), simulated=True,
                     rig_driver=SimRigDriver(rig), argv_for=worker_argv if real_worker else standin_argv)
    start = clock.now()
    sup.start(start)
    while clock.now() - start < seconds:
        t0 = clock.now()
        sup.tick(t0)
        clock.sleep(max(0.0, 0.5 - (clock.now() - t0)))
    sup.begin_shutdown(clock.now())
    while not sup.all_stopped():
        sup.tick(clock.now())
        clock.sleep(0.1)
    sup.finish_shutdown(clock.now())
    queue.close()


def telemetry_costs() -> None:
    from engine.telemetry.host import HostProbe
    from engine.telemetry.sim_rig import SimulatedRig

    rig = SimulatedRig.with_count(8)
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        rig.sample()
    print(f"simulated rig sample (8 GPUs): {(time.perf_counter() - t0) / n * 1e6:.0f} us")
    host = HostProbe(REPO)
    t0 = time.perf_counter()
    for _ in range(200):
        host.sample()
    print(f"host sample (psutil): {(time.perf_counter() - t0) / 200 * 1e6:.0f} us")
    try:
        from engine.telemetry.nvml import NvmlProbe

        probe = NvmlProbe()
        st = probe.status()
        if st.available:
            t0 = time.perf_counter()
            for _ in range(50):
                probe.sample()
            print(f"NVML sample ({st.gpu_count} GPUs): {(time.perf_counter() - t0) / 50 * 1e3:.2f} ms")
        else:
            print(f"NVML sample: n/a ({st.detail})")
        probe.close()
    except Exception as exc:  # noqa: BLE001
        print(f"NVML sample: n/a ({exc})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--real-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.seconds + args.warmup, args.real_worker)
        return 0

    import psutil

    real = has_real_worker()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--child", tmp, "--seconds", str(args.seconds), "--warmup",
               str(args.warmup)] + (["--real-worker"] if real else [])
        proc = subprocess.Popen(cmd, cwd=REPO)
        ps = psutil.Process(proc.pid)
        time.sleep(args.warmup)
        c0, t0 = ps.cpu_times(), time.monotonic()
        kids0 = {k.pid: k.cpu_times() for k in ps.children()}
        time.sleep(args.seconds)
        c1, t1 = ps.cpu_times(), time.monotonic()
        kids1 = {}
        for k in ps.children():
            try:
                kids1[k.pid] = k.cpu_times()
            except psutil.NoSuchProcess:
                pass
        proc.wait(timeout=120)
    wall = t1 - t0
    own = (c1.user + c1.system - c0.user - c0.system) / wall * 100
    workers = sum((kids1[p].user + kids1[p].system - kids0[p].user - kids0[p].system)
                  for p in kids1 if p in kids0) / wall * 100
    print(f"workers: {'galaxy worker' if real else 'protocol stand-in (galaxy worker not available)'} x 8, idle")
    print(f"supervisor CPU over {wall:.1f} s: {own:.2f}% of one core (target < 3%)")
    print(f"8 idle workers together: {workers:.2f}% of one core")
    telemetry_costs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
