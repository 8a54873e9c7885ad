"""What one claim+complete costs Redis, counted in commands it ran (scripts' own calls included,
INFO commandstats), not timed: the measure of "flat with depth" and "flat with lanes"."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from engine.model import Task
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.store.redis.queue import QueueClock, RedisQueue

POLICY = make_claim_policy(WorkerProfile("w"))
NOW = 1_000_000.0


def commands_run(client: redis.Redis) -> int:
    """Commands Redis has executed, scripts' own calls included (INFO commandstats)."""
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values() if isinstance(v, dict))


def claim_cost(url: str, cluster: str, batches: Sequence[Sequence[Task]]) -> int:
    """The commands of one claim+complete, after ``batches`` were submitted and one warm-up
    claim+complete (scripts loaded, the heads kept as a worker keeps them)."""
    client = redis.Redis.from_url(url, decode_responses=True)  # no health-check PINGs in the count
    q = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    for batch in batches:
        q.submit(list(batch), NOW)
    costs = []
    for _ in range(2):
        before = commands_run(client)
        t = q.claim("w", NOW, POLICY, 30)
        assert t is not None
        q.complete(t.task_id, "w", {}, NOW)
        costs.append(commands_run(client) - before)
    client.close()
    return costs[-1]
