"""The worker's RigView from the supervisor's snapshot: who holds which model warm, which
peers count, and that look-ahead really changes the claim on a live rig's view."""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.model import TaskClass
from engine.queue.protocol import Candidate
from engine.scheduling.policy import RigView, WorkerProfile, make_claim_policy
from engine.snapshot import GpuView, Snapshot, WorkerView, write_snapshot
from engine.worker.rigview import SnapshotRigView, rig_view_from_snapshot

NOW = 1_000_000.0
QWEN = "qwen2.5:7b"


def worker(wid: str, gpu: int, *, model: str | None = None, task: str | None = None, state: str = "running",
           heartbeat: float | None = NOW - 1.0) -> WorkerView:
    return WorkerView(worker_id=wid, gpus=(gpu,), state=state, current_task=task, resident_model=model,
                      last_heartbeat=heartbeat, residency="llm_ready" if model else "idle")


def snap(*workers: WorkerView, taken_at: float = NOW - 0.5, gpus: tuple[GpuView, ...] = ()) -> Snapshot:
    return Snapshot(version=1, seq=1, taken_at=taken_at, rig="t", simulated=True, telemetry_status="simulated",
                    workers=tuple(workers), gpus=gpus)


def assert_empty(view: RigView) -> None:
    """Look-ahead off: nobody else holds anything, no idle peers to leave work to."""
    assert (view.warm_elsewhere, view.busy_warm_elsewhere, view.idle_peers) == ({}, {}, ())


def test_the_offline_models_galaxy_ships_are_priced_as_quick_switches() -> None:
    costs = rig_view_from_snapshot(None, "me", NOW).costs
    assert costs.load_s("tiny.en") < 10 and costs.load_s("all-MiniLM-L6-v2") < 10
    assert costs.load_s(QWEN) > 60  # the LLM keeps the notes' cold-start figure


def test_counts_other_workers_warm_idle_and_busy_and_lists_idle_peers() -> None:
    s = snap(worker("gpu0", 0, model=QWEN), worker("gpu1", 1, model=QWEN, task="t1"),
             worker("gpu2", 2, model="tiny.en"), worker("gpu3", 3), worker("me", 4, model=QWEN))
    view = rig_view_from_snapshot(s, "me", NOW)
    assert view.warm_elsewhere == {QWEN: 1, "tiny.en": 1}
    assert view.busy_warm_elsewhere == {QWEN: 1}
    assert sorted((p.resident_model or "") for p in view.idle_peers) == ["", QWEN, "tiny.en"]
    assert view.holders(QWEN) == 2


def test_peers_that_will_not_claim_soon_are_left_out() -> None:
    s = snap(worker("paused", 0, model=QWEN, state="paused"), worker("dead", 1, model=QWEN, state="stopped"),
             worker("silent", 2, model=QWEN, heartbeat=NOW - 300), worker("nobeat", 3, model=QWEN, heartbeat=None),
             worker("hot", 4, model=QWEN), worker("sick", 5, model=QWEN), worker("ok", 6, model=QWEN),
             gpus=(GpuView(index=4, name="g", thermal_hold=True), GpuView(index=5, name="g", degraded="vram stuck")))
    view = rig_view_from_snapshot(s, "me", NOW)
    assert view.warm_elsewhere == {QWEN: 1}
    assert len(view.idle_peers) == 1


def test_stale_or_missing_snapshot_turns_look_ahead_off() -> None:
    live = worker("gpu0", 0, model=QWEN)
    assert_empty(rig_view_from_snapshot(snap(live, taken_at=NOW - 60), "me", NOW))
    assert_empty(rig_view_from_snapshot(None, "me", NOW))


def test_look_ahead_leaves_a_warm_lane_to_its_idle_holder() -> None:
    """The point of it: this worker (whisper warm) skips the qwen lane an idle peer holds warm."""
    lane = [Candidate("llm-1", TaskClass.LLM, QWEN, 5, NOW - 5, lane_depth=1)]
    me = WorkerProfile("me", resident_model="tiny.en")
    blind = make_claim_policy(me, RigView())(lane, NOW)
    assert [c.task_id for c in blind] == ["llm-1"]
    view = rig_view_from_snapshot(snap(worker("gpu0", 0, model=QWEN)), "me", NOW)
    assert make_claim_policy(me, view)(lane, NOW) == []


def test_an_idle_cpu_worker_is_not_offered_the_llm_lane() -> None:
    """A GPU worker with whisper warm must not leave qwen work to a CPU-only worker that cannot host it."""
    lane = [Candidate("llm-1", TaskClass.LLM, QWEN, 5, NOW - 5, lane_depth=1)]
    cpu_peer = WorkerView(worker_id="cpu0", gpus=(), state="running", last_heartbeat=NOW - 1)
    view = rig_view_from_snapshot(snap(cpu_peer), "me", NOW)
    assert [p.hostable_models for p in view.idle_peers] == [frozenset()]
    me = WorkerProfile("me", resident_model="tiny.en")
    assert [c.task_id for c in make_claim_policy(me, view)(lane, NOW)] == ["llm-1"]
    gpu_peer = worker("gpu9", 9)
    assert make_claim_policy(me, rig_view_from_snapshot(snap(gpu_peer), "me", NOW))(lane, NOW) == []


class StepClock:
    def __init__(self) -> None:
        self.t = NOW

    def now(self) -> float:
        return self.t


def test_snapshot_rig_view_reads_the_file_again_only_when_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    clock = StepClock()
    source = SnapshotRigView(path, "me", clock.now, min_interval_s=0.25)
    assert_empty(source())  # no supervisor yet
    write_snapshot(path, snap(worker("gpu0", 0, model=QWEN)))
    clock.t += 1
    assert source().warm_elsewhere == {QWEN: 1}
    for _ in range(5):
        clock.t += 1
        source()
    assert source.reads == 1
    write_snapshot(path, snap(worker("gpu0", 0, model=QWEN, task="busy-now"), taken_at=clock.t))
    clock.t += 1
    view = source()
    assert source.reads == 2
    assert view.busy_warm_elsewhere == {QWEN: 1} and view.warm_elsewhere == {}


def test_unreadable_snapshot_gives_an_empty_view_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    clock = StepClock()
    source = SnapshotRigView(path, "me", clock.now, min_interval_s=0.0)
    path.write_text("{half a snap")
    assert_empty(source())
    path.write_text(json.dumps({"version": 99}))
    os.utime(path, ns=(1, 1))
    assert_empty(source())
    write_snapshot(path, snap(worker("gpu0", 0, model=QWEN)))
    assert source().warm_elsewhere == {QWEN: 1}
