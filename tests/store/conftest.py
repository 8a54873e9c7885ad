"""Fixtures the Redis store's tests share: a real redis-server (one per test module) and a client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from engine.store.redis.client import connect
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:  # noqa: F811
    c = connect(redis_server.url)
    yield c
    c.close()
