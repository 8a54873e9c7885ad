"""The worker's rig view from the Redis store's ``SnapshotStore`` (``StoreRigView``), against an
in-memory double: parsed once per publish, empty while the store does not answer."""

from __future__ import annotations

import json

from engine.snapshot import Snapshot, WorkerView
from engine.store.channels import PublishedSnapshot
from engine.worker.rigview import StoreRigView

NOW = 1_000_000.0
QWEN = "qwen2.5:7b"


class MemorySnapshots:
    def __init__(self) -> None:
        self.kept: dict[str, PublishedSnapshot] = {}
        self.down = False

    def publish(self, rig: str, data: bytes, now: float) -> None:
        self.kept[rig] = PublishedSnapshot(rig, data, now)

    def latest(self, rig: str) -> PublishedSnapshot | None:
        if self.down:
            raise ConnectionRefusedError("Redis does not answer")
        return self.kept.get(rig)

    def rigs(self) -> list[str]:
        return sorted(self.kept)


def _publish(store: MemorySnapshots, at: float) -> None:
    peer = WorkerView(worker_id="gpu0", gpus=(0,), state="running", resident_model=QWEN, last_heartbeat=at,
                      residency="llm_ready")
    s = Snapshot(version=1, seq=1, taken_at=at, rig="rig-a", simulated=True, telemetry_status="s", workers=(peer,))
    store.publish("rig-a", json.dumps(s.to_dict()).encode(), at)


def test_the_view_follows_new_publishes_and_is_empty_while_the_store_is_away() -> None:
    store, clock = MemorySnapshots(), [NOW]
    view = StoreRigView(store, "rig-a", "me", lambda: clock[0], min_interval_s=0.0)
    assert view().warm_elsewhere == {}  # nothing published yet
    _publish(store, NOW - 0.5)
    assert view().warm_elsewhere == {QWEN: 1} and view.reads == 1
    view()
    assert view.reads == 1  # the same publish is not parsed again
    store.down = True
    assert view().warm_elsewhere == {}
    store.down = False
    assert view().warm_elsewhere == {QWEN: 1}
