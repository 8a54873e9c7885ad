"""The supervisor with real worker subprocesses (by default the protocol stand-in, which is
fast; REAL=1 runs the same tests against ``galaxy worker``), the real FileQueue and the
simulated rig. No sleeps for timing: each test ticks
the supervisor until a condition holds, with a generous deadline."""

from __future__ import annotations

import os
import signal
import sys
import time
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

STANDIN = str(Path(__file__).with_name("standin_worker.py"))
TH = Thresholds(restart_backoff_s=0.05, restart_backoff_max_s=0.2, max_fast_crashes=3, fast_crash_s=20.0,
                snapshot_interval_s=0.05, shutdown_grace_s=10.0, temp_hot_c=83.0, temp_resume_c=75.0)


def standin_argv(group, root, **_kw):  # noqa: D103
    return (sys.executable, STANDIN, "--root", str(root), "--worker-id", group.name,
            "--gpu", group.cuda_visible_devices)


class Rig:
    def __init__(self, tmp_path: Path, groups: tuple[GroupConfig, ...]) -> None:
        self.paths = RigPaths(tmp_path / "shared").ensure()
        self.queue = FileQueue(self.paths, use_inotify=False, backoff_base_s=0.05, backoff_cap_s=0.1)
        self.sim = SimulatedRig.with_count(5)
        cfg = GalaxyConfig(rig="it", groups=groups, thresholds=TH, source=None, origin="test")
        self.sup = Supervisor(cfg, self.paths, self.queue, self.sim, SubprocessLauncher(), simulated=True,
                              argv_for=None if os.environ.get("REAL") else standin_argv)
        self.sup.start(time.time())

    def until(self, cond, what: str, timeout: float = 30.0):
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

    def make(*groups: GroupConfig) -> Rig:
        r = Rig(tmp_path, groups)
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
    first_pid = rig.sup.slots["w1"].proc.pid
    os.kill(first_pid, signal.SIGKILL)
    rig.until(lambda: rig.sup.slots["w1"].proc and rig.sup.slots["w1"].proc.pid != first_pid, "w1 respawned")
    task = rig.until(lambda: (t := rig.queue.get("t1")) and t.status.value == "complete" and t, "t1 completes")
    assert task.retry_count == 1 and task.result["output_tail"].strip() == "second"
    assert "exited with code -9" in task.attempts[0].error
    assert rig.sup.slots["w1"].record.restarts == 1


def test_worker_crashing_at_start_goes_fatal_after_the_configured_tries(make_rig):
    # The stand-in exits 7 at once; under REAL=1 a broken PYTHONHOME kills Python at start (code 1).
    code = "1" if os.environ.get("REAL") else "7"
    rig = make_rig(GroupConfig("bad", gpus=(2,), env={"STANDIN_CRASH_AT_START": "7", "PYTHONHOME": "/nonexistent"}
                               if os.environ.get("REAL") else {"STANDIN_CRASH_AT_START": "7"}),
                   GroupConfig("good", gpus=(1,)))
    rig.until(lambda: rig.state("bad") == "fatal", "bad goes fatal")
    assert f"code {code}" in rig.sup.slots["bad"].record.reason and "3 crashes in a row" in rig.sup.slots["bad"].record.reason
    assert rig.sup.slots["bad"].record.restarts == 2
    submit(rig, "ok1", "echo fine")
    rig.until(lambda: (t := rig.queue.get("ok1")) and t.status.value == "complete", "good still works")
    snap = read_snapshot(rig.paths.snapshot)
    assert next(w for w in snap.workers if w.worker_id == "bad").state == "fatal"


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
    for _ in range(20):  # the worker polls its control file every 50 ms: it has had many chances
        rig.sup.tick(time.time())
        time.sleep(0.02)
    assert rig.queue.get("p1").status.value == "pending"
    cid = rig.send(CommandKind.RESUME, "w1")
    rig.until(lambda: (t := rig.queue.get("p1")) and t.status.value == "complete", "p1 runs after resume")
    assert rig.ack(cid).outcome == "ok"


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
    for _ in range(20):
        rig.sup.tick(time.time())
        time.sleep(0.02)
    assert rig.queue.get("h1").status.value == "pending"
    snap = read_snapshot(rig.paths.snapshot)
    assert snap.gpus[1].thermal_hold and snap.gpus[2].thermal_hold
    rig.sim.heat(2, 70.0)
    t = rig.until(lambda: (t := rig.queue.get("h1")) and t.status.value == "complete" and t, "h1 runs on w2")
    assert t.attempts[-1].worker_id == "w2"
