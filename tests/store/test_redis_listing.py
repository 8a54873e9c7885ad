"""The Redis queue's listing for the dashboard (RedisQueueLister) against a real redis-server: claim
order across lanes, paging, filters on class, model and id, the same rows as the file store's."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import redis

from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.queue.listing import QueueLister
from engine.store.redis.listing import RedisQueueLister
from engine.store.redis.queue import QueueClock, RedisQueue
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401

_names = itertools.count()
NOW = 1_700_000_000.0


def _tasks() -> list[tuple[float, Task]]:
    rng = random.Random(3)
    out = []
    for i in range(120):
        cls = rng.choice([TaskClass.CPU, TaskClass.LLM, TaskClass.RESOURCE, TaskClass.SCRIPT])
        model = "qwen3:8b" if cls is TaskClass.LLM else None
        out.append((NOW + i // 7, Task(f"b{i % 3}.t{i:03d}", "t", command="true", task_class=cls, model=model,
                                        priority=rng.randint(1, 9))))
    return out


def test_pages_match_the_file_stores_listing(client: redis.Redis, tmp_path: Path) -> None:
    rq = RedisQueue(client, f"list{next(_names)}", clock=QueueClock.CALLER)
    fq = FileQueue(RigPaths(tmp_path), use_inotify=False)
    for at, t in _tasks():
        rq.submit([t], at)
        fq.submit([t], at)
    redis_pages = RedisQueueLister(rq)
    file_pages = QueueLister(fq.paths.queue)
    try:
        for offset, limit, text in [(0, 25, ""), (25, 25, ""), (110, 25, ""), (0, 200, ""), (3, 10, "llm"),
                                    (0, 50, "qwen3 b1"), (5, 7, "t00"), (0, 10, "RESOURCE"), (0, 10, "nothing")]:
            a, b = redis_pages.page(offset, limit, text), file_pages.page(offset, limit, text)
            assert (a.offset, a.matched, a.total) == (b.offset, b.matched, b.total), (offset, limit, text)
            assert [(r.task_id, r.position, r.priority, r.model) for r in a.rows] == \
                   [(r.task_id, r.position, r.priority, r.model) for r in b.rows], (offset, limit, text)
    finally:
        file_pages.close()
        fq.close()
        rq.close()
