"""The event stream's appends on a real redis-server: on the connection the stream keeps (no new
connection per event), and an append after that connection was closed under it (a Redis restart,
``CLIENT KILL``) lands on a new one instead of being lost."""

from __future__ import annotations

import itertools
import json

import redis

from engine.store.redis.channels.events import RedisEventStream
from engine.store.redis.client import connect, key_prefix
from tests.support.redis_server import RedisServer

_names = itertools.count()


def _stream(redis_server: RedisServer) -> RedisEventStream:
    return RedisEventStream(connect(redis_server.url), key_prefix(f"ev{next(_names)}"))


def _line(n: int) -> str:
    return json.dumps({"type": "task_completed", "task_id": f"t{n}"})


def test_appends_share_one_kept_connection(redis_server: RedisServer, client: redis.Redis) -> None:
    events = _stream(redis_server)
    events.append(_line(0))
    connections = int(client.info("stats")["total_connections_received"])
    for n in range(1, 20):
        events.append(_line(n))
    assert int(client.info("stats")["total_connections_received"]) == connections
    assert [e["task_id"] for e in events.tail(50)] == [f"t{n}" for n in range(20)]
    assert events.write_errors == 0
    events.close()


def test_an_append_after_its_connection_was_killed_lands_on_a_new_one(redis_server: RedisServer,
                                                                       client: redis.Redis) -> None:
    events = _stream(redis_server)
    events.append(_line(0))
    killed = client.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    events.append(_line(1))
    assert events.write_errors == 0, events.last_error
    assert [e["task_id"] for e in events.tail(10)] == ["t0", "t1"]
    events.close()


def test_an_append_redis_refuses_is_counted_not_raised(redis_server: RedisServer, client: redis.Redis) -> None:
    events = _stream(redis_server)
    client.set(events.key, "not a stream")  # XADD answers WRONGTYPE
    events.append(_line(0))
    assert events.write_errors == 1 and "WRONGTYPE" in events.last_error
    events.close()
