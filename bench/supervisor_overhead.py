"""Supervisor overhead: its own CPU (percent of one core) with 8 simulated GPUs, 8 idle
workers and 2 snapshots a second, plus the cost of one telemetry sample. Target < 3%.

Runs the supervisor in a child process (the same ``Supervisor`` that ``galaxy supervise
--sim`` runs) with 8 real ``galaxy worker`` subprocesses, and measures each process
alone. CPU time comes from /proc/<pid>/schedstat (nanoseconds) where Linux has it: an idle
worker uses far less than the 10 ms tick that psutil's cpu_times counts in. The workers
must be the same live processes at the start and the end of the window (checked and
printed), so a dead or restarted worker cannot pass for an idle one.

    .venv/bin/python bench/supervisor_overhead.py [--seconds 20] [--warmup 5]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORKERS = 8


def child(root: Path, seconds: float) -> None:
    from engine.clock import SystemClock
    from engine.config import GalaxyConfig, GroupConfig, Thresholds
    from engine.paths import RigPaths
    from engine.queue.filequeue import FileQueue
    from engine.supervisor.launcher import SubprocessLauncher
    from engine.supervisor.sim_driver import SimRigDriver
    from engine.supervisor.supervisor import Supervisor
    from engine.telemetry.host import HostProbe
    from engine.telemetry.sim_rig import SimulatedRig

    clock = SystemClock()
    paths = RigPaths(root).ensure()
    groups = tuple(GroupConfig(f"gpu{i}", gpus=(i,)) for i in range(WORKERS))
    cfg = GalaxyConfig(rig="bench", groups=groups, thresholds=Thresholds(snapshot_interval_s=0.5), origin="bench")
    rig = SimulatedRig.with_count(WORKERS, clock=clock)
    queue = FileQueue(paths)
    sup = Supervisor(cfg, paths, queue, rig, SubprocessLauncher(), host=HostProbe(root), simulated=True,
                     rig_driver=SimRigDriver(rig))
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    start = clock.now()
    sup.start(start)
    while clock.now() - start < seconds and not stop["now"]:
        t0 = clock.now()
        sup.tick(t0)
        clock.sleep(max(0.0, 0.5 - (clock.now() - t0)))
    sup.begin_shutdown(clock.now())
    while not sup.all_stopped():
        sup.tick(clock.now())
        clock.sleep(0.1)
    sup.finish_shutdown(clock.now())
    queue.close()


def cpu_seconds(pid: int) -> float | None:
    """CPU time of one process in seconds (ns resolution from schedstat, else psutil's ticks)."""
    try:
        with open(f"/proc/{pid}/schedstat") as fh:
            return int(fh.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def live_workers(sup_pid: int) -> dict[int, float]:
    """pid -> CPU seconds of the supervisor's live (not zombie) worker children."""
    import psutil

    out = {}
    for k in psutil.Process(sup_pid).children():
        try:
            if k.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        cpu = cpu_seconds(k.pid)
        if cpu is not None:
            out[k.pid] = cpu
    return out


def wait_for_workers(sup_pid: int, root: Path, timeout_s: float = 60.0) -> dict[int, float]:
    """Until all 8 workers run and have written a status file (they are really up, not starting)."""
    from engine.paths import RigPaths
    from engine.workerstate import read_status

    paths = RigPaths(root)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        kids = live_workers(sup_pid)
        statuses = [read_status(paths.worker_status(f"gpu{i}")) for i in range(WORKERS)]
        if len(kids) == WORKERS and all(s is not None and s.pid in kids and s.state == "idle" for s in statuses):
            return kids
        time.sleep(0.2)  # polling for readiness, not timing anything
    raise SystemExit(f"bench: the {WORKERS} workers did not all come up idle within {timeout_s:.0f}s")


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
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.seconds + args.warmup + 90.0)  # the parent stops it with SIGTERM
        return 0


    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        cmd = [sys.executable, __file__, "--child", tmp, "--seconds", str(args.seconds), "--warmup",
               str(args.warmup)]
        proc = subprocess.Popen(cmd, cwd=REPO)
        try:
            kids0 = wait_for_workers(proc.pid, Path(tmp))
            time.sleep(args.warmup)  # let start-up settle: the window measures steady idle
            kids0 = live_workers(proc.pid)
            own0, t0 = cpu_seconds(proc.pid), time.monotonic()
            mid_alive = []
            for _ in range(4):  # check liveness during the window too
                time.sleep(args.seconds / 4)
                mid_alive.append(set(live_workers(proc.pid)) == set(kids0))
            own1, t1 = cpu_seconds(proc.pid), time.monotonic()
            kids1 = live_workers(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    wall = t1 - t0
    own = ((own1 or 0.0) - (own0 or 0.0)) / wall * 100
    same = set(kids0) == set(kids1) and len(kids0) == WORKERS and all(mid_alive)
    per = {pid: (kids1[pid] - kids0[pid]) / wall * 100 for pid in kids0 if pid in kids1}
    print(f"workers: galaxy worker x {WORKERS}, idle; same {len(kids0)} live processes throughout the window: "
          f"{'yes' if same else 'NO (a worker died or restarted: figures below are not valid)'}")
    print(f"supervisor CPU over {wall:.1f} s: {own:.2f}% of one core (target < 3%)")
    print(f"{len(per)} idle workers together: {sum(per.values()):.3f}% of one core "
          f"(each {min(per.values(), default=0):.3f}%..{max(per.values(), default=0):.3f}%)")
    telemetry_costs()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
