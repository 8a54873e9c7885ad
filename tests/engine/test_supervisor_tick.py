"""The supervisor's tick with a fake launcher, the real FileQueue and the simulated rig.

Time is a FakeClock; worker heartbeats are written through the real status-file protocol.
"""

from __future__ import annotations

import json

import pytest

from engine.clock import FakeClock
from engine.commands import CommandKind, FileCommandSink, make_command
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.events import tail_events
from engine.model import Task
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.snapshot import read_snapshot
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.sim_rig import SimulatedRig
from engine.workerstate import WorkerStatus, read_control, write_json_dataclass

TH = Thresholds(restart_backoff_s=1.0, max_fast_crashes=3, fast_crash_s=10.0, snapshot_interval_s=0.5,
                temp_hot_c=83.0, temp_resume_c=75.0, shutdown_grace_s=5.0)


@pytest.fixture
def rig(tmp_path):
    clock = FakeClock(1_000.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="test", groups=(GroupConfig("brain", gpus=(0, 3), role="brain", backend="ollama",
                                                        endpoint="http://127.0.0.1:9"),
                                            GroupConfig("w1", gpus=(1,)), GroupConfig("w2", gpus=(2,))),
                       thresholds=TH, source=None, origin="test config")
    queue = FileQueue(paths, use_inotify=False)
    sim = SimulatedRig.with_count(5, clock=clock)
    launcher = FakeLauncher()
    logs: list[tuple[str, dict]] = []
    sup = Supervisor(cfg, paths, queue, sim, launcher, simulated=True, pid=4242,
                     log=lambda msg, **kw: logs.append((msg, kw)))
    sup.start(clock.now())
    yield sup, clock, launcher, paths, queue, sim, logs
    queue.close()


def heartbeat(paths, proc, worker_id, at, **kw):
    write_json_dataclass(paths.worker_status(worker_id),
                         WorkerStatus(worker_id=worker_id, pid=proc.pid, gpus=(), state=kw.pop("state", "idle"),
                                      heartbeat_at=at, **kw))


def step(sup, clock, s=0.5):
    clock.advance(s)
    sup.tick(clock.now())


def test_spawns_one_worker_per_group_with_its_gpus_in_the_child_env(rig):
    _sup, _clock, launcher, paths, *_ = rig
    specs = {p.spec.worker_id: p.spec for p in launcher.spawned}
    assert set(specs) == {"brain", "w1", "w2"}
    assert specs["brain"].env["CUDA_VISIBLE_DEVICES"] == "0,3"
    assert specs["w1"].env["CUDA_VISIBLE_DEVICES"] == "1"
    argv = specs["brain"].argv
    assert argv[1:7] == ("-m", "engine.cli.main", "--root", str(paths.root), "worker", "--worker-id")
    assert argv[argv.index("--gpu") + 1] == "0,3" and argv[argv.index("--endpoint") + 1] == "http://127.0.0.1:9"
    assert read_control(paths.worker_control("w1")).mode == "run"


def test_heartbeat_makes_running_and_snapshot_round_trips(rig):
    sup, clock, launcher, paths, *_ = rig
    for p in launcher.spawned:
        heartbeat(paths, p, p.spec.worker_id, clock.now())
    step(sup, clock)
    snap = read_snapshot(paths.snapshot)
    assert snap.simulated and snap.telemetry_status.startswith("simulated rig")
    assert {w.worker_id: w.state for w in snap.workers} == {"brain": "running", "w1": "running", "w2": "running"}
    assert [g.worker_id for g in snap.gpus] == ["brain", "w1", "w2", "brain", None]
    assert all(g.name.endswith("(simulated)") for g in snap.gpus)
    assert type(snap).from_dict(json.loads(paths.snapshot.read_text())) == snap
    seq = snap.seq
    step(sup, clock)
    assert read_snapshot(paths.snapshot).seq == seq + 1


def test_crash_restarts_after_backoff_and_recovers_the_task(rig):
    sup, clock, launcher, paths, queue, *_ = rig
    queue.submit([Task(task_id="t1", name="job", command="true")], clock.now())
    w1 = launcher.for_worker("w1")[0]
    claimed = queue.claim("w1", clock.now(), lambda c, now: c, 60.0)
    assert claimed.task_id == "t1"
    heartbeat(paths, w1, "w1", clock.now(), state="busy", current_task="t1")
    step(sup, clock)
    w1.exit(-9)
    step(sup, clock)
    assert sup.slots["w1"].record.state.value == "backoff"
    t = queue.get("t1")
    assert t.status.value == "pending" and t.retry_count == 1 and "exited with code -9" in t.attempts[-1].error
    assert len(launcher.for_worker("w1")) == 1
    step(sup, clock, 1.0)
    assert len(launcher.for_worker("w1")) == 2
    assert sup.slots["brain"].record.state.value == "starting"  # others untouched


def test_fast_crashes_go_fatal_with_the_reason_in_the_snapshot(rig):
    sup, clock, launcher, paths, *_ = rig
    for _ in range(3):
        launcher.for_worker("w2")[-1].exit(3)
        for _ in range(10):
            step(sup, clock)
    assert len(launcher.for_worker("w2")) == 3
    snap = read_snapshot(paths.snapshot)
    w2 = next(w for w in snap.workers if w.worker_id == "w2")
    assert w2.state == "fatal" and "code 3" in w2.state_reason
    assert any(a.key == "crash_loop:w2" and a.severity == "critical" for a in snap.alerts)


def test_commands_pause_drain_and_unknown_worker(rig):
    sup, clock, launcher, paths, *_ = rig
    for p in launcher.spawned:
        heartbeat(paths, p, p.spec.worker_id, clock.now())
    step(sup, clock)
    sink = FileCommandSink(paths.commands)
    sink.send(make_command(CommandKind.PAUSE, "w1", source="test", now=clock.now()))
    sink.send(make_command(CommandKind.DRAIN, "w2", source="test", now=clock.now() + 0.001))
    sink.send(make_command(CommandKind.PAUSE, "nope", source="test", now=clock.now() + 0.002))
    step(sup, clock)
    acks = {a.target: a for a in read_snapshot(paths.snapshot).acks}
    assert acks["w1"].outcome == "ok" and acks["w2"].outcome == "ok"
    assert acks["nope"].outcome == "refused" and "no worker named 'nope'" in acks["nope"].message
    assert read_control(paths.worker_control("w1")).mode == "pause"
    assert read_control(paths.worker_control("w2")).mode == "drain"
    launcher.for_worker("w2")[0].exit(0)
    step(sup, clock)
    assert sup.slots["w2"].record.state.value == "stopped"
    step(sup, clock, 5.0)
    assert len(launcher.for_worker("w2")) == 1  # drained means stays stopped


def test_thermal_guard_holds_and_releases_through_the_control_file(rig):
    sup, clock, launcher, paths, _, sim, _logs = rig
    for p in launcher.spawned:
        heartbeat(paths, p, p.spec.worker_id, clock.now())
    step(sup, clock)
    sim.heat(1, 86.0)
    step(sup, clock)
    assert read_control(paths.worker_control("w1")).thermal_hold is True
    assert read_control(paths.worker_control("w2")).thermal_hold is False
    snap = read_snapshot(paths.snapshot)
    assert snap.gpus[1].thermal_hold and next(w for w in snap.workers if w.worker_id == "w1").state == "paused"
    sim.heat(1, 79.0)
    step(sup, clock)
    assert read_control(paths.worker_control("w1")).thermal_hold is True  # hysteresis: not yet
    sim.heat(1, 74.0)
    step(sup, clock)
    assert read_control(paths.worker_control("w1")).thermal_hold is False
    assert next(w for w in read_snapshot(paths.snapshot).workers if w.worker_id == "w1").state == "running"


def test_shutdown_terminates_and_kills_a_stuck_worker_after_grace(rig):
    sup, clock, launcher, _paths, *_ = rig
    stuck = launcher.for_worker("w1")[0]
    stuck.exit_on_terminate = None
    sup.begin_shutdown(clock.now())
    step(sup, clock)
    assert not sup.all_stopped() and stuck.signals == ["TERM"]
    step(sup, clock, 6.0)
    step(sup, clock)
    assert stuck.signals == ["TERM", "KILL"] and sup.all_stopped()


def test_a_crash_right_after_a_completion_recovers_nothing(rig):
    """The status file still names the finished task; only processing claims count as held."""
    sup, clock, launcher, paths, queue, *_ = rig
    queue.submit([Task(task_id="t1", name="job", command="true")], clock.now())
    w1 = launcher.for_worker("w1")[0]
    queue.claim("w1", clock.now(), lambda c, now: c, 60.0)
    heartbeat(paths, w1, "w1", clock.now(), state="busy", current_task="t1")
    step(sup, clock)
    queue.complete("t1", "w1", {"ok": True}, clock.now())
    w1.exit(-9)  # died before its idle status was written
    step(sup, clock)
    kinds = {e["event_type"] for e in tail_events(paths.events, 1000)}
    assert not kinds & {"duplicate_completion", "late_result_discarded"}
    assert queue.get("t1").status.value == "complete"


def test_a_refused_retry_says_the_queues_reason(rig):
    """b failed because its dependency a did: 'b is not a failed task' would be wrong."""
    sup, clock, _launcher, paths, queue, *_ = rig
    queue.submit([Task(task_id="a", name="a", command="false", max_retries=0),
                  Task(task_id="b", name="b", command="true", depends_on=("a",))], clock.now())
    assert queue.claim("w1", clock.now(), lambda c, now: c, 60.0).task_id == "a"
    queue.fail("a", "w1", "exit code 1", clock.now())
    assert queue.get("b").status.value == "failed"
    FileCommandSink(paths.commands).send(make_command(CommandKind.RETRY, "b", source="test", now=clock.now()))
    step(sup, clock)
    (ack,) = [a for a in read_snapshot(paths.snapshot).acks if a.target == "b"]
    assert ack.outcome == "refused" and "dependency a has failed; retry a instead" in ack.message
