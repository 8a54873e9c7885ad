"""The audit log's contract (``AuditLog``), for the file store and Redis: records from every
process, append-only, read back newest ``n`` oldest first; a write never raises."""

from __future__ import annotations

from tests.conformance.channel_stores import ChannelStore, channel_store_fixture  # noqa: F401
from tests.support.redis_server import redis_server  # noqa: F401


def test_records_from_several_writers_come_back_in_order(channel_store: ChannelStore) -> None:
    a, b = channel_store.open(), channel_store.open()
    for i in range(6):
        (a if i % 2 else b).audit.append({"kind": "pause", "command_id": f"c{i}", "outcome": "ok", "n": i})
    got = channel_store.open().audit.read(100)
    assert [r["command_id"] for r in got] == [f"c{i}" for i in range(6)]
    assert got[3] == {"kind": "pause", "command_id": "c3", "outcome": "ok", "n": 3}
    assert a.audit.errors == b.audit.errors == 0 and a.audit.last_error == ""


def test_read_gives_the_newest_n(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    for i in range(20):
        ch.audit.append({"kind": "escalation_decision", "escalation_id": f"esc-{i}"})
    assert [r["escalation_id"] for r in ch.audit.read(3)] == ["esc-17", "esc-18", "esc-19"]
    assert ch.audit.read(0) == []


def test_an_empty_audit_reads_nothing(channel_store: ChannelStore) -> None:
    assert channel_store.open().audit.read(10) == []


def test_values_that_are_not_json_are_written_as_text(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    ch.audit.append({"kind": "x", "at": 1.5, "why": ValueError("no")})
    (rec,) = ch.audit.read(1)
    assert rec == {"kind": "x", "at": 1.5, "why": "no"}
