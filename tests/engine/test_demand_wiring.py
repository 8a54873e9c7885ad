"""Demand-aware coverage on a live rig, end to end: the supervisor publishes what it learned per
model in the snapshot (``model_demand``), the worker's RigView puts it into the claim policy's
costs, and that changes which task the worker takes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine.cli.status_data import status_data
from engine.clock import FakeClock
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.queue.protocol import Candidate
from engine.scheduling.costs import UNKNOWN_MODEL_COST
from engine.scheduling.policy import RigView, WorkerProfile, _still_covered, make_claim_policy
from engine.snapshot import ModelDemandView, Snapshot, WorkerView, read_snapshot, write_snapshot
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.sim_rig import SimulatedRig
from engine.worker.rigview import SnapshotRigView, default_costs, rig_view_from_snapshot

NOW = 1_000_000.0
QWEN = "qwen2.5:7b"
WHISPER = "whisper-small.en"
BUSY_QWEN = {QWEN: ModelDemandView(workers_busy=1.6, task_s=80.0, task_s_samples=12, claimable=72)}


def snap(demand: dict[str, ModelDemandView] | None = None, taken_at: float = NOW - 0.5) -> Snapshot:
    """One other live worker, idle, with Qwen warm."""
    peer = WorkerView(worker_id="gpu0", gpus=(0,), state="running", resident_model=QWEN, last_heartbeat=NOW - 1,
                      residency="llm_ready")
    return Snapshot(version=1, seq=1, taken_at=taken_at, rig="t", simulated=True, telemetry_status="simulated",
                    workers=(peer,), model_demand=demand or {})


# ---------------------------------------------------------------- the snapshot field
def test_the_field_round_trips_and_an_older_snapshot_reads_as_empty(tmp_path: Path) -> None:
    s = snap(BUSY_QWEN)
    assert Snapshot.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    old = s.to_dict()
    del old["model_demand"]
    assert Snapshot.from_dict(old).model_demand == {}
    write_snapshot(tmp_path / "snapshot.json", s)
    assert read_snapshot(tmp_path / "snapshot.json") == s


def test_a_malformed_demand_entry_is_a_schema_error_naming_the_field() -> None:
    bad = snap(BUSY_QWEN).to_dict()
    bad["model_demand"][QWEN]["workers_busy"] = "lots"
    with pytest.raises(ValueError, match=r"model_demand\.qwen2\.5:7b\.workers_busy"):
        Snapshot.from_dict(bad)


# ---------------------------------------------------------------- the worker's costs
def test_rigview_puts_the_learned_demand_into_the_costs() -> None:
    costs = rig_view_from_snapshot(snap(BUSY_QWEN), "me", NOW).costs
    assert costs.cost(QWEN) == replace(default_costs().cost(QWEN), workers_busy=1.6, task_s=80.0)
    assert costs.holders_needed(QWEN) == 2
    assert costs.cost(WHISPER) == default_costs().cost(WHISPER)  # no news: the table as it is


def test_a_model_the_table_does_not_know_is_priced_as_unknown_with_what_was_learned() -> None:
    demand = {"mystery:3b": ModelDemandView(workers_busy=2.2, task_s=None)}
    costs = rig_view_from_snapshot(snap(demand), "me", NOW).costs
    assert costs.cost("mystery:3b") == replace(UNKNOWN_MODEL_COST, workers_busy=2.2)


def test_a_stale_or_missing_snapshot_keeps_the_table() -> None:
    assert rig_view_from_snapshot(snap(BUSY_QWEN, taken_at=NOW - 60), "me", NOW).costs == default_costs()
    assert rig_view_from_snapshot(None, "me", NOW).costs == default_costs()


def test_coverage_needs_as_many_other_holders_as_the_work_keeps_busy() -> None:
    """The wiring itself: one other Qwen holder covers Qwen only while its demand is unknown."""
    assert _still_covered(QWEN, rig_view_from_snapshot(snap(), "me", NOW))
    assert not _still_covered(QWEN, rig_view_from_snapshot(snap(BUSY_QWEN), "me", NOW))


def test_a_busy_model_keeps_this_worker_on_it_instead_of_a_slightly_higher_lane() -> None:
    """With Qwen's demand unknown, the whisper lane (p5, a short switch) beats the warm Qwen lane
    (p4); with Qwen keeping 1.6 workers busy, leaving it would cost its reload: Qwen first."""
    lanes = [Candidate("whisper-1", TaskClass.SCRIPT, WHISPER, 5, NOW - 5),
             Candidate("qwen-1", TaskClass.LLM, QWEN, 4, NOW - 5)]
    me = WorkerProfile("me", resident_model=QWEN)
    blind = make_claim_policy(me, rig_view_from_snapshot(snap(), "me", NOW))(lanes, NOW)
    aware = make_claim_policy(me, rig_view_from_snapshot(snap(BUSY_QWEN), "me", NOW))(lanes, NOW)
    assert blind[0].task_id == "whisper-1"
    assert aware[0].task_id == "qwen-1"


def test_the_snapshot_file_reader_carries_the_demand(tmp_path: Path) -> None:
    write_snapshot(tmp_path / "snapshot.json", snap(BUSY_QWEN))
    view = SnapshotRigView(tmp_path / "snapshot.json", "me", lambda: NOW)()
    assert view.costs.cost(QWEN).workers_busy == 1.6


# ---------------------------------------------------------------- through the real supervisor
@pytest.fixture
def rig(tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = FakeClock(NOW)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="test", groups=(GroupConfig("w1", gpus=(0,)), GroupConfig("w2", gpus=(1,))),
                       thresholds=Thresholds(snapshot_interval_s=0.5), source=None, origin="test config")
    queue = FileQueue(paths, use_inotify=False)
    sup = Supervisor(cfg, paths, queue, SimulatedRig.with_count(2, clock=clock), FakeLauncher(), simulated=True,
                     pid=4242)
    sup.start(clock.now())
    yield sup, clock, paths, queue
    queue.close()


def test_the_supervisor_learns_from_the_queue_events_and_workers_read_it(rig) -> None:  # type: ignore[no-untyped-def]
    sup, clock, paths, queue = rig
    queue.submit([Task(task_id=f"q{i}", name="ask", command="true", task_class=TaskClass.SCRIPT, model=QWEN)
                  for i in range(30)], clock.now())
    for _ in range(3):  # three runs of 200 s each (claim to completion)
        t = queue.claim("w1", clock.now(), lambda c, now: c, 600.0)
        assert t is not None
        clock.advance(200.0)
        queue.complete(t.task_id, "w1", {}, clock.now())
    clock.advance(0.5)
    sup.tick(clock.now())
    s = read_snapshot(paths.snapshot)
    assert s is not None
    d = s.model_demand[QWEN]
    assert (d.claimable, d.task_s, d.task_s_samples) == (30, 200.0, 3)
    assert d.workers_busy == pytest.approx(30 * 200.0 / 3600.0, abs=1e-3)
    view = rig_view_from_snapshot(s, "w2", clock.now())
    assert view.costs.holders_needed(QWEN) == 2
    assert not _still_covered(QWEN, RigView(warm_elsewhere={QWEN: 1}, costs=view.costs))
    status = status_data(paths.root, clock.now())["model_demand"]  # what `galaxy status --json` prints
    assert status[QWEN]["claimable"] == 30 and status[QWEN]["task_s"] == 200.0
