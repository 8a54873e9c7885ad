"""The snapshot store's contract (``SnapshotStore``), for the file store and Redis.

Each rig has one latest snapshot, replaced whole by each publish; any handle reads it with the
time it was published (the publisher's ``now``), so a reader decides STALE from its own ``now``
with no clock of the store's; ``rigs`` lists every rig that published.
"""

from __future__ import annotations

import json

import pytest

from engine.snapshot import SNAPSHOT_VERSION, Snapshot, parse_published
from engine.store.channels import PublishedSnapshot
from tests.conformance.channel_stores import RIG, ChannelStore, channel_store_fixture  # noqa: F401
from tests.support.redis_server import redis_server  # noqa: F401

T0 = 1_700_000_000.0


def _snap(rig: str, seq: int, at: float) -> bytes:
    s = Snapshot(version=SNAPSHOT_VERSION, seq=seq, taken_at=at, rig=rig, simulated=True, telemetry_status="sim")
    return json.dumps(s.to_dict(), separators=(",", ":")).encode()


def test_no_snapshot_before_the_first_publish(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    assert ch.snapshots.latest(RIG) is None and ch.snapshots.rigs() == []


def test_the_latest_publish_wins_whole_and_carries_its_time(channel_store: ChannelStore) -> None:
    writer, reader = channel_store.open(), channel_store.open()
    writer.snapshots.publish(RIG, _snap(RIG, 1, T0), T0)
    writer.snapshots.publish(RIG, _snap(RIG, 2, T0 + 0.5), T0 + 0.5)
    got = reader.snapshots.latest(RIG)
    assert got is not None and got.rig == RIG and got.published_at == pytest.approx(T0 + 0.5, abs=1e-3)
    snap = parse_published(got)
    assert snap.seq == 2 and snap.rig == RIG


def test_rigs_are_kept_apart_and_listed(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    ch.snapshots.publish(RIG, _snap(RIG, 7, T0), T0)
    ch.snapshots.publish("rig-b", _snap("rig-b", 3, T0 + 1), T0 + 1)
    other = channel_store.open()
    a, b = other.snapshots.latest(RIG), other.snapshots.latest("rig-b")
    assert a is not None and b is not None
    assert parse_published(a).seq == 7 and parse_published(b).seq == 3
    assert other.snapshots.rigs() == [RIG, "rig-b"]
    assert other.snapshots.latest("rig-c") is None


def test_a_rig_that_stopped_publishing_is_stale_by_the_readers_now(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    ch.snapshots.publish(RIG, _snap(RIG, 1, T0), T0)
    got = channel_store.open().snapshots.latest(RIG)
    assert got is not None
    assert not got.is_stale(T0 + 2.0, stale_after_s=3.0)
    assert got.is_stale(T0 + 3.5, stale_after_s=3.0)
    assert got.age(T0 + 10) == pytest.approx(10, abs=1e-3)


def test_a_bad_rig_name_is_refused_before_anything_is_written(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    for bad in ("../x", "a/b", "", "a b", "x" * 65):
        with pytest.raises(ValueError, match="rig name"):
            ch.snapshots.publish(bad, _snap(bad, 1, T0), T0)
        assert ch.snapshots.latest(bad) is None
    assert ch.snapshots.rigs() == []


def test_published_snapshot_staleness_is_pure() -> None:
    p = PublishedSnapshot("r", b"{}", 100.0)
    assert p.is_stale(104.0, 3.0) and not p.is_stale(103.0, 3.0)
