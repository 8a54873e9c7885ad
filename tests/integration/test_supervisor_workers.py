"""The supervisor with real ``galaxy worker`` subprocesses (the product code path), the real
FileQueue and the simulated rig. No sleeps for timing: each test ticks the supervisor until
a condition holds, with a generous deadline; "nothing happened" is checked against the
worker's own heartbeats (it looked again after the change and still did not act)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.commands import CommandKind, FileCommandSink, make_command
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.model import Task
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.snapshot import read_snapshot
from engine.supervisor.launcher import SubprocessLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.sim_rig import SimulatedRig

TH = Thresholds(restart_backoff_s=0.05, restart_backoff_max_s=0.2, max_fast_crashes=3, fast_crash_s=20.0,
                snapshot_interval_s=0.05, shutdown_grace_s=10.0, temp_hot_c=83.0, temp_resume_c=75.0)


class Rig:
    def __init__(self, tmp_path: Path, groups: tuple[GroupConfig, ...], th: Thresholds = TH) -> None:
        self.paths = RigPaths(tmp_path / "shared").ensure()
        self.queue = FileQueue(self.paths, use_inotify=False, backoff_base_s=0.05, backoff_cap_s=0.1)
        self.sim = SimulatedRig.with_count(5)
        cfg = GalaxyConfig(rig="it", groups=groups, thresholds=th, source=None, origin="test")
        self.sup = Supervisor(cfg, self.paths, self.queue, self.sim, SubprocessLauncher(), simulated=True)
        self.sup.start(time.time())

    def until(self, cond, what: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sup.tick(time.time())
            got = cond()
            if got:
                return got
            time.sleep(0.02)
        pytest.fail(f"timed out waiting for: {what}")

    def state(self, wid: str) -> str:
        return self.sup.slots[wid].record.state.value

    def status(self, wid: str):
        return self.sup.slots[wid].status

    def looked_again_after(self, wid: str, since: float, state: str) -> None:
        """Wait for two fresh heartbeats from ``wid`` written after ``since``, still in ``state``:
        the worker ran its loop (read its control file, could have claimed) after the change."""
        self.until(lambda: (s := self.status(wid)) and s.heartbeat_at > since and s.state == state,
                   f"{wid} heartbeat after the change")
        first = self.status(wid).heartbeat_at
        self.until(lambda: (s := self.status(wid)) and s.heartbeat_at > first, f"{wid} second heartbeat")
        assert self.status(wid).state == state

    def send(self, kind: CommandKind, target: str | None = None) -> str:
        cmd = make_command(kind, target, source="test")
        FileCommandSink(self.paths.commands).send(cmd)
        return cmd.command_id

    def ack(self, command_id: str):
        snap = read_snapshot(self.paths.snapshot)
        return next((a for a in snap.acks if a.command_id == command_id), None) if snap else None

    def stop(self) -> None:
        self.sup.begin_shutdown(time.time())
        self.until(self.sup.all_stopped, "all workers stopped")
        self.sup.finish_shutdown(time.time())
        self.queue.close()


@pytest.fixture
def make_rig(tmp_path):
    rigs: list[Rig] = []

    def make(*groups: GroupConfig, th: Thresholds = TH) -> Rig:
        r = Rig(tmp_path, groups, th)
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        if not r.sup.stop_requested or not r.sup.all_stopped():
            r.stop()


def submit(rig: Rig, task_id: str, command: str) -> None:
    rig.queue.submit([Task(task_id=task_id, name=task_id, command=command)], time.time())


def test_sigkilled_worker_is_restarted_and_its_task_recovered(make_rig, tmp_path):
    rig = make_rig(GroupConfig("w1", gpus=(1,)))
    marker = tmp_path / "first-attempt"
    submit(rig, "t1", f"if [ -e {marker} ]; then echo second; else touch {marker}; sleep 60; fi")
    rig.until(lambda: rig.sup.slots["w1"].status and rig.sup.slots["w1"].status.current_task == "t1",
              "w1 runs t1")
    # The status names the task before its shell has run a line: kill only once the first attempt is under way.
    rig.until(lambda: marker.exists(), "the first attempt has started")
    first_pid = rig.sup.slots["w1"].proc.pid
    os.kill(first_pid, signal.SIGKILL)
    rig.until(lambda: rig.sup.slots["w1"].proc and rig.sup.slots["w1"].proc.pid != first_pid, "w1 respawned")
    task = rig.until(lambda: (t := rig.queue.get("t1")) and t.status.value == "complete" and t, "t1 completes")
    assert task.retry_count == 1 and task.result["output_tail"].strip() == "second"
    assert "exited with code -9" in task.attempts[0].error
    assert rig.sup.slots["w1"].record.restarts == 1


def test_worker_crashing_at_start_goes_fatal_after_the_configured_tries(make_rig):
    # The real galaxy worker with a broken PYTHONHOME: the interpreter dies before any of our code runs.
    rig = make_rig(GroupConfig("bad", gpus=(2,), env={"PYTHONHOME": "/nonexistent"}), GroupConfig("good", gpus=(1,)))
    rig.until(lambda: rig.state("bad") == "fatal", "bad goes fatal")
    reason = rig.sup.slots["bad"].record.reason
    assert "code 1" in reason and "3 crashes in a row" in reason
    assert rig.sup.slots["bad"].record.restarts == 2
    submit(rig, "ok1", "echo fine")
    rig.until(lambda: (t := rig.queue.get("ok1")) and t.status.value == "complete", "good still works")
    snap = rig.until(lambda: (s := read_snapshot(rig.paths.snapshot)) and s.alerts and s, "crash-loop alert")
    assert next(w for w in snap.workers if w.worker_id == "bad").state == "fatal"
    assert any(a.key == "crash_loop:bad" and a.severity == "critical" for a in snap.alerts)


def test_the_child_sees_its_cuda_visible_devices(make_rig):
    rig = make_rig(GroupConfig("pair", gpus=(0, 3), ld_library_path="/opt/galaxy-test/lib"))
    submit(rig, "env1", 'echo "$CUDA_VISIBLE_DEVICES|$CUDA_DEVICE_ORDER|${LD_LIBRARY_PATH%%:*}"')
    t = rig.until(lambda: (t := rig.queue.get("env1")) and t.status.value == "complete" and t, "env task")
    assert t.result["output_tail"].strip() == "0,3|PCI_BUS_ID|/opt/galaxy-test/lib"


def test_pause_takes_nothing_new_resume_continues(make_rig):
    rig = make_rig(GroupConfig("w1", gpus=(1,)))
    rig.until(lambda: rig.state("w1") == "running", "w1 running")
    cid = rig.send(CommandKind.PAUSE, "w1")
    rig.until(lambda: rig.ack(cid), "pause acked")
    seq = rig.sup.slots["w1"].control_seq
    rig.until(lambda: (s := rig.sup.slots["w1"].status) and s.control_seq >= seq and s.state == "paused",
              "worker obeys pause")
    submit(rig, "p1", "echo hi")
    rig.looked_again_after("w1", time.time(), "paused")
    assert rig.queue.get("p1").status.value == "pending"
    cid = rig.send(CommandKind.RESUME, "w1")
    rig.until(lambda: (t := rig.queue.get("p1")) and t.status.value == "complete", "p1 runs after resume")
    assert rig.until(lambda: rig.ack(cid), "resume acked in a snapshot").outcome == "ok"


def test_drain_finishes_the_running_task_then_stops(make_rig, tmp_path):
    rig = make_rig(GroupConfig("w1", gpus=(1,)))
    gate = tmp_path / "gate"
    submit(rig, "d1", f"while [ ! -e {gate} ]; do sleep 0.02; done; echo drained-ok")
    rig.until(lambda: (s := rig.sup.slots["w1"].status) and s.current_task == "d1", "d1 running")
    cid = rig.send(CommandKind.DRAIN, "w1")
    rig.until(lambda: rig.ack(cid), "drain acked")
    assert rig.state("w1") == "draining"
    submit(rig, "d2", "echo never")
    gate.touch()
    rig.until(lambda: rig.state("w1") == "stopped", "w1 stopped after draining")
    assert rig.queue.get("d1").status.value == "complete"
    assert rig.queue.get("d2").status.value == "pending"


def test_thermal_guard_holds_claims_on_a_hot_simulated_card(make_rig):
    rig = make_rig(GroupConfig("w1", gpus=(1,)), GroupConfig("w2", gpus=(2,)))
    rig.until(lambda: rig.state("w1") == "running" and rig.state("w2") == "running", "both running")
    rig.sim.heat(1, 90.0)
    rig.sim.heat(2, 90.0)
    rig.until(lambda: all((s := rig.sup.slots[w].status) and s.state == "hot" for w in ("w1", "w2")),
              "both workers hold")
    submit(rig, "h1", "echo cool")
    submitted = time.time()
    rig.looked_again_after("w1", submitted, "hot")
    rig.looked_again_after("w2", submitted, "hot")
    assert rig.queue.get("h1").status.value == "pending"
    snap = read_snapshot(rig.paths.snapshot)
    assert snap.gpus[1].thermal_hold and snap.gpus[2].thermal_hold
    rig.sim.heat(2, 70.0)
    t = rig.until(lambda: (t := rig.queue.get("h1")) and t.status.value == "complete" and t, "h1 runs on w2")
    assert t.attempts[-1].worker_id == "w2"


def test_sigterm_stops_idle_workers_cleanly_and_a_busy_one_hands_its_task_back(make_rig):
    rig = make_rig(GroupConfig("w1", gpus=(1,)), GroupConfig("w2", gpus=(2,)), GroupConfig("w3", gpus=(3,)),
                   th=replace(TH, shutdown_grace_s=4.0))  # the worker gets 80% of it: 3.2 s
    rig.until(lambda: all(rig.state(w) == "running" for w in ("w1", "w2", "w3")), "all running")
    submit(rig, "long", "sleep 300")
    holder = rig.until(lambda: next((w for w in rig.sup.slots if (s := rig.status(w)) and s.current_task == "long"),
                                    None), "a worker runs the long task")
    rig.sup.begin_shutdown(time.time())
    rig.until(rig.sup.all_stopped, "all workers stopped")
    codes = {w: rig.sup.slots[w].record.last_exit_code for w in rig.sup.slots}
    assert codes == {"w1": 0, "w2": 0, "w3": 0}, codes  # none needed SIGKILL (-9), idle or busy
    t = rig.queue.get("long")
    assert t.status.value == "pending" and t.retry_count == 0  # handed back, no retry charged
    assert t.attempts[-1].outcome == "released" and t.attempts[-1].worker_id == holder
