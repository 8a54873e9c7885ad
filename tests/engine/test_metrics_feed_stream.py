"""The /metrics event counters on the Redis store: the feed follows the cluster's event stream (a
real redis-server), counts what this rig appends after it started (what the stream held before
teaches models only), and leaves other rigs' lines out."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from engine.events import EventLog
from engine.metrics.feed import EventFeed
from engine.store.redis.channels import redis_channels
from engine.store.redis.client import connect
from tests.support.redis_server import redis_server  # noqa: F401

T0 = 1_700_000_000.0
LATER = T0 + 60  # a scrape a minute after the events: every failure has settled


def test_the_feed_counts_this_rigs_new_lines_from_the_stream(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server")
    ch = redis_channels(connect(server.url), "mf" + uuid.uuid4().hex[:8], "rig-a")
    try:
        cli = EventLog(tmp_path / "x.jsonl", stream=ch.events)
        a = EventLog(tmp_path / "x.jsonl", {"rig": "rig-a"}, stream=ch.events)
        b = EventLog(tmp_path / "x.jsonl", {"rig": "rig-b"}, stream=ch.events)
        cli.emit("task_submitted", at=T0, task_id="old", task_class="llm", model="m1")
        a.emit("task_completed", at=T0 + 1, task_id="old", task_class="llm", worker_id="gpu0", duration_ms=5000.0)
        feed = EventFeed(tmp_path / "x.jsonl", stream=ch.events, rig="rig-a")
        feed.update(LATER)
        assert feed.generation == 0 and feed.model_of("old") == "m1"  # history: models only, no counts
        a.emit("task_completed", at=T0 + 2, task_id="old", task_class="llm", worker_id="gpu0", duration_ms=7000.0)
        b.emit("task_completed", at=T0 + 3, task_id="old", task_class="llm", worker_id="gpu0", duration_ms=9000.0)
        feed.update(LATER)
        assert feed.generation == 1  # rig-a's new completion; rig-b's line left out
        assert not (tmp_path / "x.jsonl").exists()
    finally:
        ch.close()
