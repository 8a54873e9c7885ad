"""What the snapshot says about running tasks, degraded cards and silent workers.

A fake launcher and a FakeClock drive the supervisor; worker status files are written
through the real status-file protocol and tasks are claimed from the real FileQueue.
"""

from __future__ import annotations

import pytest

from engine.clock import FakeClock
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.model import Task
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.snapshot import read_snapshot
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.sim_rig import SimulatedRig
from engine.workerstate import WorkerStatus, write_json_dataclass

TH = Thresholds(snapshot_interval_s=0.5, heartbeat_silent_s=30.0, alert_clear_s=5.0)


@pytest.fixture
def rig(tmp_path):
    clock = FakeClock(1_000.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="test", groups=(GroupConfig("w1", gpus=(1,)), GroupConfig("w2", gpus=(2,))),
                       thresholds=TH, source=None, origin="test config")
    queue = FileQueue(paths, use_inotify=False)
    launcher = FakeLauncher()
    sup = Supervisor(cfg, paths, queue, SimulatedRig.with_count(3, clock=clock), launcher, simulated=True,
                     pid=4242)
    sup.start(clock.now())
    yield sup, clock, launcher, paths, queue
    queue.close()


def beat(paths, launcher, worker_id, at, **kw):
    proc = launcher.for_worker(worker_id)[-1]
    write_json_dataclass(paths.worker_status(worker_id),
                         WorkerStatus(worker_id=worker_id, pid=proc.pid, gpus=(), state=kw.pop("state", "idle"),
                                      heartbeat_at=at, **kw))


def step(sup, clock, s=0.5):
    clock.advance(s)
    sup.tick(clock.now())
    return read_snapshot(sup.paths.snapshot)


def test_a_running_task_carries_its_claim_time_and_worker(rig):
    sup, clock, launcher, paths, queue = rig
    queue.submit([Task(task_id="old", name="retried", command="false", max_retries=3)], clock.now())
    first = queue.claim("w2", clock.now(), lambda c, now: c, 60.0)
    queue.fail(first.task_id, "w2", "boom", clock.now() + 1.0, retryable=True)
    clock.advance(100.0)
    queue.promote_due(clock.now())
    claimed_at = clock.now()
    assert queue.claim("w1", claimed_at, lambda c, now: c, 60.0).task_id == "old"
    beat(paths, launcher, "w1", clock.now(), state="busy", current_task="old", task_started_at=claimed_at)
    snap = step(sup, clock)
    (running,) = snap.running
    assert running.worker_id == "w1"  # the claim's worker, not the failed attempt's (w2)
    assert running.started_at == pytest.approx(claimed_at, abs=1e-3)
    assert running.ended_at is None and running.duration_s is None and running.retry_count == 1


def test_a_degraded_card_shows_on_its_gpu_and_raises_a_critical_alert(rig):
    sup, clock, launcher, paths, _ = rig
    beat(paths, launcher, "w1", clock.now())
    beat(paths, launcher, "w2", clock.now())
    snap = step(sup, clock)
    assert snap.gpus[1].degraded is None and not any(a.key.startswith("gpu_degraded") for a in snap.alerts)
    beat(paths, launcher, "w1", clock.now(), gpu_degraded="VRAM not freed after unload")
    snap = step(sup, clock)
    assert snap.gpus[1].degraded == "VRAM not freed after unload" and snap.gpus[2].degraded is None
    alert = next(a for a in snap.alerts if a.key == "gpu_degraded:w1")
    assert alert.severity == "critical" and "GPU 1" in alert.message and "VRAM not freed" in alert.message
    beat(paths, launcher, "w1", clock.now())  # the manager saw the VRAM free again
    snap = step(sup, clock)
    assert snap.gpus[1].degraded is None and not any(a.key == "gpu_degraded:w1" for a in snap.alerts)


def test_regular_heartbeats_keep_the_silent_alert_off_and_silence_raises_it(rig):
    sup, clock, launcher, paths, _ = rig
    for _ in range(60):  # two minutes of a busy worker beating every 2 s
        beat(paths, launcher, "w1", clock.now(), state="busy", current_task="t")
        beat(paths, launcher, "w2", clock.now())
        snap = step(sup, clock, 2.0)
        assert not any(a.key.startswith("worker_silent") for a in snap.alerts), snap.alerts
    for _ in range(20):  # w1 goes quiet for 40 s; w2 keeps beating
        beat(paths, launcher, "w2", clock.now())
        snap = step(sup, clock, 2.0)
    keys = {a.key for a in snap.alerts}
    assert "worker_silent:w1" in keys and "worker_silent:w2" not in keys
