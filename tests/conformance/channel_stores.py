"""The channel stores the channel contract suites run against (test_*_contract.py here, except
the task queue's): the file store under a fresh root, and Redis (a real ``redis-server``, one
per test module, from tests/support/redis_server.py) under a fresh cluster name per test.

``store.open()`` opens one more handle onto the SAME store, as another process (another rig,
for Redis) would; each test gets a fresh, empty store. Not a conftest (the task queue's suite
owns tests/conformance/conftest.py): a suite imports ``channel_store_fixture``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.paths import RigPaths
from engine.store.open import Channels, file_channels

KINDS = ("file", "redis")
RIG = "rig-a"
"""The rig every handle of a file store is (one rig per shared root); Redis handles too, by default."""


@dataclass
class ChannelStore:
    kind: str
    opener: Callable[[str], Channels]
    root: Path
    opened: list[Channels] = field(default_factory=list)

    def open(self, rig: str = RIG) -> Channels:
        ch = self.opener(rig)
        self.opened.append(ch)
        return ch

    def close(self) -> None:
        for ch in self.opened:
            ch.close()


def _file_opener(root: Path) -> Callable[[str], Channels]:
    paths = RigPaths(root).ensure()

    def open_file(rig: str) -> Channels:
        return file_channels(paths, RIG)  # one rig per root: every handle on it is that rig

    return open_file


def _redis_opener(url: str) -> Callable[[str], Channels]:
    from engine.store.redis.channels import redis_channels
    from engine.store.redis.client import connect

    cluster = "t" + uuid.uuid4().hex[:12]

    def open_redis(rig: str) -> Channels:
        return redis_channels(connect(url), cluster, rig)

    return open_redis


@pytest.fixture(params=KINDS, name="channel_store")
def channel_store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChannelStore]:
    root = tmp_path / "store"
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")  # module-scoped; skips only without the binary
        store = ChannelStore("redis", _redis_opener(server.url), root)
    else:
        store = ChannelStore("file", _file_opener(root), root)
    try:
        yield store
    finally:
        store.close()
