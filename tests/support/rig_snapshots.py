"""Snapshots of rigs in a cluster, as their supervisors publish them, for the cluster-view tests
(``galaxy status`` and ``galaxy attach`` over several rigs)."""

from __future__ import annotations

import json

from engine.snapshot import SNAPSHOT_VERSION, GpuView, Snapshot, WorkerView
from engine.store.channels import SnapshotStore
from engine.supervisor.states import WState


def rig_snapshot(rig: str, at: float, *, gpus: int, pid: int, seq: int = 1, busy: str | None = None) -> Snapshot:
    """``gpus`` cards, each with its worker ``gpu<i>`` (the same names on every rig, as galaxy names
    them); ``busy``: the task id the first worker runs."""
    cards = tuple(GpuView(index=i, name="NVIDIA GeForce GTX 1060 6GB", simulated=True, util_pct=10.0 * i,
                          mem_used_mb=1000.0, mem_total_mb=6144.0, worker_id=f"gpu{i}") for i in range(gpus))
    workers = tuple(WorkerView(worker_id=f"gpu{i}", gpus=(i,), state=WState.RUNNING, pid=pid + 1 + i,
                               current_task=busy if i == 0 else None, task_name=busy if i == 0 else None,
                               llm_backend="none")
                    for i in range(gpus))
    return Snapshot(version=SNAPSHOT_VERSION, seq=seq, taken_at=at, rig=rig, simulated=True,
                    telemetry_status="simulated rig", supervisor_pid=pid, started_at=at - 3725.0,
                    gpus=cards, workers=workers)


def publish(store: SnapshotStore, snap: Snapshot, at: float) -> None:
    store.publish(snap.rig, json.dumps(snap.to_dict()).encode(), at)
