"""The Redis channels while redis-server is down and after it comes back (a real server, stopped
and restarted on the same port and data directory): a lost event or audit line is counted with
its reason, never raised; a snapshot, command or escalation call raises ``StoreUnavailable`` (an
``OSError``, which the supervisor's write paths already survive); the same handles work again once
the server is back, with what was written before the stop still there."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from engine.commands import CommandKind, make_command
from engine.store.redis.channels import redis_channels
from engine.store.redis.client import connect
from engine.store.redis.queue import StoreUnavailable
from tests.support.redis_server import RedisServer, redis_server_binary


def _wait_loaded(url: str, timeout_s: float = 30.0) -> None:
    """Until the restarted server has replayed its AOF (it answers INFO while still loading)."""
    probe = connect(url, socket_timeout_s=2.0)
    deadline = time.monotonic() + timeout_s
    try:
        while int(probe.info("persistence").get("loading", 1)) != 0:
            if time.monotonic() > deadline:
                pytest.fail(f"redis at {url} still loading its data after {timeout_s:g} s")
            time.sleep(0.05)
    finally:
        probe.close()


def test_channels_survive_a_redis_restart(tmp_path: Path) -> None:
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs Debian's redis-server)")
    server = RedisServer(tmp_path / "redis")
    try:
        ch = redis_channels(connect(server.url, socket_timeout_s=2.0), "out" + uuid.uuid4().hex[:8], "rig-a")
        ch.snapshots.publish("rig-a", b'{"seq": 1}', 100.0)
        ch.audit.append({"kind": "pause", "outcome": "ok"})
        server.stop()

        ch.events.append('{"timestamp": "t", "event_type": "task_failed"}')
        ch.audit.append({"kind": "resume", "outcome": "ok"})
        assert ch.events.write_errors == 1 and "did not answer" in ch.events.last_error
        assert ch.audit.errors == 1 and "did not answer" in ch.audit.last_error
        with pytest.raises(StoreUnavailable):
            ch.snapshots.publish("rig-a", b'{"seq": 2}', 101.0)
        with pytest.raises(OSError):
            ch.commands.send(make_command(CommandKind.PAUSE, "gpu0", source="t", now=101.0))
        with pytest.raises(OSError):
            ch.escalations.all()

        server.restart()
        _wait_loaded(server.url)
        got = ch.snapshots.latest("rig-a")
        assert got is not None and got.data == b'{"seq": 1}' and got.published_at == 100.0
        assert [r["kind"] for r in ch.audit.read(10)] == ["pause"]
        ch.snapshots.publish("rig-a", b'{"seq": 3}', 102.0)
        ch.events.append('{"timestamp": "t", "event_type": "task_completed"}')
        assert [e["event_type"] for e in ch.events.tail(5)] == ["task_completed"]
        ch.close()
    finally:
        server.stop()
