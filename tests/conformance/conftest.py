"""The queue implementations the contract suite runs against.

``QUEUE_FACTORIES`` maps a name to a factory ``(root, clock, request) -> RigQueue``. Calling a
factory again with the same ``root`` must open a second handle onto the SAME store (what
another worker process sees); a different ``root`` is a fresh, empty store. ``request`` lets a
factory use pytest fixtures (a real redis-server, say) and ``pytest.skip`` when its service is
absent. Adding an implementation to the suite is one entry here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from engine.clock import FakeClock
from engine.events import EventLog
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.queue.protocol import RigQueue
from tests.support.redis_server import redis_server  # noqa: F401  (the redis factory's server)

T0 = 1_700_000_000.0


class QueueFactory(Protocol):
    def __call__(self, root: Path, clock: FakeClock, request: pytest.FixtureRequest) -> RigQueue: ...


def file_queue(root: Path, clock: FakeClock, request: pytest.FixtureRequest) -> RigQueue:
    paths = RigPaths(root)
    return FileQueue(paths, events=EventLog(paths.ensure().events), rng=random.Random(7))


def redis_queue(root: Path, clock: FakeClock, request: pytest.FixtureRequest) -> RigQueue:
    """A RedisQueue on a real redis-server (tests/support/redis_server.py), the cluster named after
    ``root``; judged by the fake clock's ``now`` (QueueClock.CALLER), as the file store is."""
    import hashlib

    from engine.store.redis.client import connect
    from engine.store.redis.queue import QueueClock, RedisQueue

    server = request.getfixturevalue("redis_server")  # module-scoped; skips only without the binary
    cluster = "c" + hashlib.sha1(str(root).encode()).hexdigest()[:16]
    paths = RigPaths(root)
    return RedisQueue(connect(server.url), cluster, events=EventLog(paths.ensure().events), clock=QueueClock.CALLER,
                      rng=random.Random(7))


QUEUE_FACTORIES: dict[str, QueueFactory] = {
    "file": file_queue,
    "redis": redis_queue,
}

OpenQueue = Callable[[], RigQueue]


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture(params=sorted(QUEUE_FACTORIES))
def queue_factory(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[OpenQueue]:
    """Opens handles onto one fresh store of the parametrized implementation; closes them after."""
    factory = QUEUE_FACTORIES[request.param]
    root = tmp_path / "store"
    opened: list[RigQueue] = []

    def open_queue() -> RigQueue:
        q = factory(root, clock, request)
        opened.append(q)
        return q

    yield open_queue
    for q in opened:
        q.close()


@pytest.fixture()
def q(queue_factory: OpenQueue) -> RigQueue:
    return queue_factory()
