"""The dashboard's source for a rig in the Redis store (``StoreSnapshotSource``), against an
in-memory ``SnapshotStore`` double: new publishes only, the rig's liveness from its publish time,
and "store unreachable since HH:MM:SS" while the store does not answer."""

from __future__ import annotations

import json

from engine.snapshot import SNAPSHOT_VERSION, Snapshot
from engine.store.channels import PublishedSnapshot
from galaxy_tui.source import StoreSnapshotSource

T0 = 1_700_000_000.0


class MemorySnapshots:
    def __init__(self) -> None:
        self.kept: dict[str, PublishedSnapshot] = {}
        self.down: OSError | None = None

    def publish(self, rig: str, data: bytes, now: float) -> None:
        self.kept[rig] = PublishedSnapshot(rig, data, now)

    def latest(self, rig: str) -> PublishedSnapshot | None:
        if self.down is not None:
            raise self.down
        return self.kept.get(rig)

    def rigs(self) -> list[str]:
        return sorted(self.kept)


def _data(seq: int, at: float) -> bytes:
    snap = Snapshot(version=SNAPSHOT_VERSION, seq=seq, taken_at=at, rig="rig-a", simulated=True, telemetry_status="s")
    return json.dumps(snap.to_dict()).encode()


def test_new_publishes_only_and_liveness_from_the_publish_time() -> None:
    store, wall = MemorySnapshots(), [T0]
    source = StoreSnapshotSource(store, "rig-a", wall=lambda: wall[0])
    first = source.poll()
    assert first is not None and first.snapshot is None and first.error == "no snapshot yet for rig rig-a"
    assert source.poll() is None  # the same error is not repeated
    store.publish("rig-a", _data(1, T0), T0)
    got = source.poll()
    assert got is not None and got.snapshot is not None and got.snapshot.seq == 1 and got.supervisor_alive is None
    assert source.poll() is None  # nothing new
    wall[0] = T0 + 60  # the rig stopped publishing: its supervisor is gone
    gone = source.poll()
    assert gone is not None and gone.snapshot is None and gone.supervisor_alive is False


def test_an_unreachable_store_is_reported_with_the_time_it_stopped_answering() -> None:
    store, wall = MemorySnapshots(), [T0]
    store.publish("rig-a", _data(1, T0), T0)
    source = StoreSnapshotSource(store, "rig-a", wall=lambda: wall[0])
    assert source.poll() is not None
    store.down = ConnectionRefusedError("Connection refused")
    down = source.poll()
    assert down is not None and down.error is not None and down.error.startswith("store unreachable since ")
    wall[0] = T0 + 5
    assert source.poll() is None  # still the same outage, said once
    store.down = None
    back = source.poll()
    assert back is not None and back.snapshot is not None and back.error is None
