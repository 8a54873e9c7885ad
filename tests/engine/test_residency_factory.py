"""Which residency a worker gets, and residency events in the shared event log."""

from __future__ import annotations

import json

from engine.clock import FakeClock
from engine.events import EventLog
from engine.paths import RigPaths
from engine.residency.factory import event_log_sink, make_worker_residency
from engine.residency.manager import ResidencyEvent, ResidencyManager
from engine.residency.protocol import NullResidency
from engine.residency.snapshot_probe import SnapshotGpuProbe


def test_cpu_worker_gets_null_residency(tmp_path) -> None:
    r = make_worker_residency(gpu_ids=(), backend_kind="ollama", endpoint="http://127.0.0.1:1", handlers={},
                              paths=RigPaths(tmp_path), simulated=True, clock=FakeClock())
    assert isinstance(r, NullResidency)


def test_sim_gpu_worker_reads_the_snapshot_and_talks_to_its_ollama(tmp_path) -> None:
    r = make_worker_residency(gpu_ids=(1, 2), backend_kind="ollama", endpoint="http://127.0.0.1:11435",
                              handlers={}, paths=RigPaths(tmp_path), simulated=True, clock=FakeClock())
    assert isinstance(r, ResidencyManager) and isinstance(r.probe, SnapshotGpuProbe)
    assert r.backend is not None and r.backend.name == "ollama@127.0.0.1:11435" and r.gpu_ids == (1, 2)
    assert r.probe.sample() == [] and not r.probe.status().available  # no supervisor has written yet


def test_openai_backend_is_not_unloaded_by_residency(tmp_path) -> None:
    r = make_worker_residency(gpu_ids=(0,), backend_kind="openai", endpoint="http://127.0.0.1:8000/v1",
                              handlers=dict, paths=RigPaths(tmp_path), simulated=True, clock=FakeClock())
    assert isinstance(r, ResidencyManager) and r.backend is None and r.handlers == {}


def test_events_land_in_the_event_log(tmp_path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    sink = event_log_sink(log, "gpu1")
    sink(ResidencyEvent("vram_not_freed", "gpu 1 degraded: VRAM not freed", "critical", "vram_not_freed:1", (1,),
                        "qwen2.5:7b", {"held_mb": 4700}))
    (rec,) = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert rec["event_type"] == "vram_not_freed" and rec["worker_id"] == "gpu1" and rec["gpu_id"] == 1
    assert rec["severity"] == "critical" and rec["alert_key"] == "vram_not_freed:1" and rec["held_mb"] == 4700


def test_probe_choice_follows_the_snapshots_simulated_flag(tmp_path) -> None:
    from engine.residency.factory import worker_probe
    from engine.snapshot import SNAPSHOT_VERSION, Snapshot, write_snapshot

    paths = RigPaths(tmp_path).ensure()
    write_snapshot(paths.snapshot, Snapshot(version=SNAPSHOT_VERSION, seq=1, taken_at=0.0, rig="r", simulated=True,
                                            telemetry_status="simulated rig"))
    assert isinstance(worker_probe(paths, None), SnapshotGpuProbe)
    assert isinstance(worker_probe(paths, True), SnapshotGpuProbe)
