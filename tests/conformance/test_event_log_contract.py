"""The event log's contract (``EventStream``), for the file store and Redis.

Lines from several writers (processes) are kept whole and in append order; ``tail(n)`` gives
the newest ``n`` oldest first; after the log is trimmed (the file store rotates it, Redis trims
its stream) ``tail`` still gives the newest events that are kept, and the store stays bounded.
"""

from __future__ import annotations

import json

import pytest

from engine.event_types import EventType
from engine.events import EventLog
from engine.logsetup import rotate_if_over
from tests.conformance.channel_stores import ChannelStore, channel_store_fixture  # noqa: F401
from tests.support.redis_server import redis_server  # noqa: F401

T0 = 1_700_000_000.0


def _log(store: ChannelStore) -> EventLog:
    ch = store.open()
    return EventLog(store.root / "logs" / "events.jsonl", stream=ch.events)


def test_an_empty_log_tails_nothing(channel_store: ChannelStore) -> None:
    assert channel_store.open().events.tail(10) == []
    assert channel_store.open().events.tail(0) == []


def test_events_from_several_writers_come_back_whole_and_in_append_order(channel_store: ChannelStore) -> None:
    a, b = _log(channel_store), _log(channel_store).bind(worker_id="w2")
    for i in range(10):
        (a if i % 2 == 0 else b).emit(EventType.TASK_SUBMITTED, at=T0 + i, task_id=f"t{i}", task_class="llm")
    got = channel_store.open().events.tail(50)
    assert [e["task_id"] for e in got] == [f"t{i}" for i in range(10)]
    assert [e["worker_id"] for e in got[:2]] == [None, "w2"]
    assert all(e["event_type"] == "task_submitted" and e["task_class"] == "llm" for e in got)


def test_tail_gives_the_newest_n_oldest_first(channel_store: ChannelStore) -> None:
    log = _log(channel_store)
    for i in range(30):
        log.emit(EventType.TASK_COMPLETED, at=T0 + i, task_id=f"t{i}")
    assert [e["task_id"] for e in log.tail(5)] == ["t25", "t26", "t27", "t28", "t29"]


def test_a_line_that_is_not_an_event_is_skipped_not_fatal(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    ch.events.append(json.dumps({"timestamp": "x", "event_type": "task_failed", "task_id": "a"}))
    ch.events.append("[1, 2, 3]")
    ch.events.append(json.dumps({"timestamp": "y", "event_type": "task_failed", "task_id": "b"}))
    assert [e["task_id"] for e in ch.events.tail(10)] == ["a", "b"]


def _trim(store: ChannelStore) -> None:
    """What the store does to stay bounded: the supervisor rotates the file; Redis trims on append."""
    if store.kind == "file":
        rotate_if_over(store.root / "logs" / "events.jsonl", 1, 3)


@pytest.mark.parametrize("total", [300])
def test_tail_after_trim_gives_the_newest_kept_and_the_log_stays_bounded(channel_store: ChannelStore,
                                                                           total: int) -> None:
    def writer() -> EventLog:  # each batch from a fresh handle, as processes come and go
        ch = channel_store.open()
        if channel_store.kind == "redis":
            from engine.store.redis.channels.events import RedisEventStream

            assert isinstance(ch.events, RedisEventStream)
            ch.events.keep = 100  # a small cap, so trimming happens in a few hundred appends
        return EventLog(channel_store.root / "logs" / "events.jsonl", stream=ch.events)

    first, cut = writer(), total - 40
    for i in range(cut):
        first.emit(EventType.TASK_SUBMITTED, at=T0 + i, task_id=f"t{i}")
    _trim(channel_store)
    second = writer()
    for i in range(cut, total):
        second.emit(EventType.TASK_SUBMITTED, at=T0 + i, task_id=f"t{i}")
    reader = channel_store.open().events
    kept = reader.tail(10 * total)
    assert len(kept) < total  # trimmed
    assert [e["task_id"] for e in kept[-40:]] == [f"t{i}" for i in range(cut, total)]
    assert [e["task_id"] for e in reader.tail(3)] == [f"t{total - 3}", f"t{total - 2}", f"t{total - 1}"]
    assert first.write_errors == second.write_errors == 0


def test_a_follower_reads_each_line_once_in_order_across_handles(channel_store: ChannelStore) -> None:
    writer, follower = _log(channel_store), channel_store.open().events
    assert follower.read_after(None, 10)[0] == []  # nothing yet
    for i in range(5):
        writer.emit(EventType.TASK_SUBMITTED, at=T0 + i, task_id=f"t{i}")
    first, cursor = follower.read_after(None, 3)
    second, cursor = follower.read_after(cursor, 100)
    assert [json.loads(x)["task_id"] for x in first + second] == ["t0", "t1", "t2", "t3", "t4"]
    assert follower.read_after(cursor, 100)[0] == []
    writer.emit(EventType.TASK_COMPLETED, at=T0 + 9, task_id="t5")
    more, cursor = channel_store.open().events.read_after(cursor, 100)  # the cursor means the same to any handle
    assert [json.loads(x)["task_id"] for x in more] == ["t5"]


def test_close_loses_nothing_and_a_later_append_reopens(channel_store: ChannelStore) -> None:
    log = _log(channel_store)
    log.emit(EventType.TASK_SUBMITTED, at=T0, task_id="before")
    log.close()
    log.close()  # safe to repeat
    log.emit(EventType.TASK_SUBMITTED, at=T0 + 1, task_id="after")
    assert [e["task_id"] for e in channel_store.open().events.tail(10)] == ["before", "after"]
    assert log.write_errors == 0
