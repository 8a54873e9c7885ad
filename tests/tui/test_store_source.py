"""The dashboard's source for a shared store (``ClusterSnapshotSource``), against an in-memory
``SnapshotStore`` double: new publishes only, liveness from the publish time, "store unreachable
since HH:MM:SS" while the store does not answer, and every rig's cards in one view."""

from __future__ import annotations

import json

from engine.snapshot import SNAPSHOT_VERSION, Snapshot
from engine.store.channels import PublishedSnapshot
from galaxy_tui.source import ClusterSnapshotSource
from tests.support.rig_snapshots import publish, rig_snapshot

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
    source = ClusterSnapshotSource(store, "rig-a", wall=lambda: wall[0])
    first = source.poll()
    assert first is not None and first.snapshot is None and first.error == "no snapshot yet for rig rig-a"
    assert source.poll() is None  # the same error is not repeated
    store.publish("rig-a", _data(1, T0), T0)
    got = source.poll()
    assert got is not None and got.snapshot is not None and got.snapshot.seq == 1 and got.supervisor_alive is None
    assert source.poll() is None  # nothing new
    wall[0] = T0 + 60  # the rig stopped publishing: its supervisor is gone
    gone = source.poll()
    assert gone is not None and gone.supervisor_alive is False
    assert source.poll() is None  # said once


def test_an_unreachable_store_is_reported_with_the_time_it_stopped_answering() -> None:
    store, wall = MemorySnapshots(), [T0]
    store.publish("rig-a", _data(1, T0), T0)
    source = ClusterSnapshotSource(store, "rig-a", wall=lambda: wall[0])
    assert source.poll() is not None
    store.down = ConnectionRefusedError("Connection refused")
    down = source.poll()
    assert down is not None and down.error is not None and down.error.startswith("store unreachable since ")
    wall[0] = T0 + 5
    assert source.poll() is None  # still the same outage, said once
    store.down = None
    back = source.poll()
    assert back is not None and back.snapshot is not None and back.error is None


def test_every_rigs_cards_in_one_view_with_the_home_rigs_queue() -> None:
    store, wall = MemorySnapshots(), [T0]
    publish(store, rig_snapshot("lab", T0, gpus=2, pid=100, seq=5), T0)
    publish(store, rig_snapshot("gaming", T0, gpus=1, pid=200, seq=9), T0)
    publish(store, rig_snapshot("attic", T0 - 60, gpus=1, pid=300), T0 - 60)
    source = ClusterSnapshotSource(store, "lab", wall=lambda: wall[0])
    got = source.poll()
    assert got is not None and got.snapshot is not None and got.supervisor_alive is None
    snap = got.snapshot
    assert snap.seq == 5 and snap.supervisor_pid == 100  # the base is this host's rig
    # this rig first, then the others by name; the worker names repeat, the rig tells them apart
    assert [(g.rig, g.index) for g in snap.gpus] == [("lab", 0), ("lab", 1), ("attic", 0), ("gaming", 0)]
    assert [(w.rig, w.worker_id) for w in snap.workers] == [
        ("lab", "gpu0"), ("lab", "gpu1"), ("attic", "gpu0"), ("gaming", "gpu0")]
    assert [(r.rig, r.stale, r.supervisor_pid) for r in snap.rigs] == [
        ("lab", False, 100), ("attic", True, 300), ("gaming", False, 200)]
    assert source.poll() is None  # nothing was published since

    wall[0] = T0 + 30  # this host's supervisor stopped; gaming goes on publishing
    publish(store, rig_snapshot("gaming", T0 + 30, gpus=1, pid=200, seq=10), T0 + 30)
    moved = source.poll()
    assert moved is not None and moved.snapshot is not None and moved.supervisor_alive is None
    assert moved.snapshot.supervisor_pid == 200  # the queue and tasks now come from a live rig
    assert [r.stale for r in moved.snapshot.rigs] == [True, True, False]


def test_an_unreadable_rig_is_listed_with_its_problem_and_the_others_still_show() -> None:
    store, wall = MemorySnapshots(), [T0]
    publish(store, rig_snapshot("lab", T0, gpus=1, pid=100), T0)
    store.publish("broken", b"{not json", T0)
    got = ClusterSnapshotSource(store, "lab", wall=lambda: wall[0]).poll()
    assert got is not None and got.snapshot is not None
    broken = next(r for r in got.snapshot.rigs if r.rig == "broken")
    assert broken.problem is not None and "broken" in broken.problem and broken.gpus == 0
    assert [g.rig for g in got.snapshot.gpus] == ["lab"]
