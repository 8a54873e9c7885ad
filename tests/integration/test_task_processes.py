"""A task's processes die with it, and a rig crash's claims come back at once: real
``galaxy worker`` and ``galaxy supervise --sim`` processes, real SIGKILLs, the real
FileQueue. Compound commands leave children that the parent-death signal alone misses;
each test first checks they are really there, then that nothing of the group survives
by the time the task can be claimed again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli.status_data import status_data
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.model import Task
from engine.paths import RigPaths
from engine.proctable import HostProcessTable
from engine.queue.filequeue import FileQueue
from engine.queue.names import parse_processing_name
from engine.supervisor.launcher import SubprocessLauncher
from engine.supervisor.supervisor import Supervisor
from engine.taskgroups import TaskGroupRecord, TaskGroups
from engine.telemetry.sim_rig import SimulatedRig
from engine.workerstate import read_status

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="process groups are read from /proc (Linux)")

REPO = Path(__file__).resolve().parents[2]
COMPOUND = "sleep 300 & sleep 300 & wait"
NESTED = "bash -c 'sleep 300 & sleep 300 & wait' & wait"
TH = Thresholds(restart_backoff_s=0.05, restart_backoff_max_s=0.2, max_fast_crashes=3, fast_crash_s=20.0,
                snapshot_interval_s=0.05, shutdown_grace_s=3.0, temp_hot_c=83.0, temp_resume_c=75.0)
TABLE = HostProcessTable()


def wait_for(cond, what: str, timeout: float = 60.0, tick=lambda: None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick()
        got = cond()
        if got:
            return got
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for: {what}")


def running_groups(paths: RigPaths, task_ids: set[str], members: int) -> dict[str, TaskGroupRecord]:
    """task id -> its group record, once every task's group has ``members`` live processes."""
    recs = {r.task_id: r for r in TaskGroups(paths).records() if r.task_id in task_ids}
    if set(recs) != task_ids or any(len(TABLE.group_members(r.pgid)) < members for r in recs.values()):
        return {}
    return recs


def claims_of(paths: RigPaths, instances: set[str]) -> list[str]:
    return [pn.task_id for pn in map(parse_processing_name, os.listdir(paths.processing))
            if pn is not None and pn.instance in instances]


def test_a_sigkilled_worker_s_task_processes_are_dead_before_the_task_is_offered_again(tmp_path):
    paths = RigPaths(tmp_path / "shared").ensure()
    queue = FileQueue(paths, use_inotify=False, backoff_base_s=30.0, backoff_cap_s=30.0)
    cfg = GalaxyConfig(rig="it", groups=(GroupConfig("w1", gpus=(1,)), GroupConfig("w2", gpus=(2,))),
                       thresholds=TH, source=None, origin="test")
    sup = Supervisor(cfg, paths, queue, SimulatedRig.with_count(3), SubprocessLauncher(), simulated=True)
    sup.start(time.time())

    def tick() -> None:
        sup.tick(time.time())

    try:
        queue.submit([Task(task_id="compound", name="c", command=COMPOUND),
                      Task(task_id="nested", name="n", command=NESTED)], time.time())
        recs = wait_for(lambda: running_groups(paths, {"compound", "nested"}, 3), "both tasks' children run",
                        tick=tick)
        old = {r.instance for r in recs.values()}
        for slot in sup.slots.values():
            os.kill(slot.proc.pid, signal.SIGKILL)
        # Each tick either still shows the old claims or has already killed their groups.
        while claims_of(paths, old):
            tick()
            time.sleep(0.02)
        for rec in recs.values():
            assert TABLE.group_members(rec.pgid) == [], f"{rec.task_id}: task processes outlived their worker"
            assert rec.out_path and not os.path.exists(rec.out_path)
        for tid in ("compound", "nested"):
            t = queue.get(tid)
            assert t.status.value == "pending" and "exited with code -9" in t.attempts[-1].error
        assert TaskGroups(paths).records() == [] or all(r.instance not in old for r in TaskGroups(paths).records())
    finally:
        for tid in ("compound", "nested"):
            queue.cancel(tid, time.time(), "test over")
        sup.begin_shutdown(time.time())
        wait_for(sup.all_stopped, "workers stopped", tick=tick)
        sup.finish_shutdown(time.time())
        queue.close()


def test_a_reaped_lease_kills_the_task_group_of_a_worker_that_hangs(tmp_path):
    root = tmp_path / "shared"
    paths = RigPaths(root).ensure()
    queue = FileQueue(paths, use_inotify=False)
    queue.submit([Task(task_id="hang", name="h", command=NESTED)], time.time())
    worker = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(root), "worker",
                               "--worker-id", "w1", "--lease", "30"], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        rec = wait_for(lambda: running_groups(paths, {"hang"}, 4), "the task's children run")["hang"]
        os.kill(worker.pid, signal.SIGSTOP)  # alive, but its lease will not be renewed
        assert queue.reap_stale(time.time() + 31.0) == ["hang"]
        assert TABLE.group_members(rec.pgid) == []
        assert queue.get("hang").status.value == "pending"
    finally:
        worker.kill()
        worker.wait()


def test_after_a_rig_crash_a_new_supervisor_hands_the_claims_back_at_once_with_no_retry_charged(tmp_path):
    root = tmp_path / "shared"
    paths = RigPaths(root).ensure()
    daemon = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config",
                               str(tmp_path / "none.toml"), "supervise", "--sim", "--gpus", "2", "--tick", "0.1"],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    queue = FileQueue(paths, use_inotify=False)
    sup = None
    try:
        queue.submit([Task(task_id="long1", name="l1", command=COMPOUND),
                      Task(task_id="long2", name="l2", command=NESTED)], time.time())
        recs = wait_for(lambda: running_groups(paths, {"long1", "long2"}, 3), "both tasks' children run")
        workers = [read_status(paths.worker_status(w)) for w in ("gpu0", "gpu1")]
        daemon.kill()  # the whole rig at once: supervisor, then its workers
        for st in workers:
            os.kill(st.pid, signal.SIGKILL)
        daemon.wait()
        wait_for(lambda: not any(TABLE.start_ticks(st.pid) for st in workers), "workers gone")
        assert all(TABLE.group_members(r.pgid) for r in recs.values()), "the children outlive a crash by themselves"

        shown = status_data(root, time.time())
        assert shown["running"] == [] and {r["task_id"] for r in shown["orphaned"]} == {"long1", "long2"}

        cfg = GalaxyConfig(rig="it", groups=(GroupConfig("gpu0", gpus=(0,)), GroupConfig("gpu1", gpus=(1,))),
                           thresholds=TH, source=None, origin="test")
        sup = Supervisor(cfg, paths, queue, SimulatedRig.with_count(2), SubprocessLauncher(), simulated=True)
        sup.start(time.time())  # the sweep runs in start(), long before any lease could end
        for tid, rec in recs.items():
            t = queue.get(tid)
            # handed back at once, no retry charged; a new worker it spawned may already have claimed it
            # again (on a loaded machine this test's process can be off the CPU for a second), but the
            # crashed worker's attempt is "released", not "lost" after a lease
            assert t.retry_count == 0 and t.attempts[0].outcome == "released", (tid, t.attempts)
            assert t.status.value == "pending" or (t.status.value == "processing" and len(t.attempts) == 2), \
                (tid, t.status, t.attempts)
            assert TABLE.group_members(rec.pgid) == [], f"{tid}: the old task's processes still run"
        assert status_data(root, time.time())["orphaned"] == []
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        for tid in ("long1", "long2"):
            queue.cancel(tid, time.time(), "test over")
        if sup is not None:
            sup.begin_shutdown(time.time())
            wait_for(sup.all_stopped, "workers stopped", tick=lambda: sup.tick(time.time()))
            sup.finish_shutdown(time.time())
        queue.close()
