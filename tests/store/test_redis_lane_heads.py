"""The lane heads kept in one hash (``hd``, engine/store/redis/lua_prelude.py) on a real redis-server:
every script that changes a lane keeps its entry, so reading every head is one HGETALL; data written
before the hash was kept is rebuilt from the lanes on the first read; a stale entry is mended by the
claim it misled. Deterministic: heads compared with the lanes themselves, work counted in commands."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from engine.model import Task
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.store.redis import codec
from engine.store.redis.queue import QueueClock, RedisQueue
from engine.store.redis.replies import Heads
from tests.store.claim_cost import claim_cost
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401

POLICY = make_claim_policy(WorkerProfile("w"))
NOW = 1_000_000.0
_names = itertools.count()


@pytest.fixture
def q(client: redis.Redis) -> Iterator[RedisQueue]:
    queue = RedisQueue(client, f"hd{next(_names)}", clock=QueueClock.CALLER, backoff_base_s=1.0, backoff_cap_s=1.0)
    yield queue
    queue.close()


def task(task_id: str, *deps: str, **kw: Any) -> Task:
    return Task(task_id, task_id, command="true", depends_on=deps, **kw)


def from_lanes(q: RedisQueue) -> Heads:
    """Every lane's head read from the lanes themselves (as the scripts read them before hd)."""
    out: Heads = {}
    for lane in q.r.smembers(q.key("lanes")):
        head = q.r.zrange(q.key(f"lane:{lane}"), 0, 0, withscores=True)
        if head:
            out[str(lane)] = (str(head[0][0]), float(head[0][1]), int(q.r.zcard(q.key(f"lane:{lane}"))))
    return out


def test_the_kept_heads_are_the_lanes_heads_after_every_kind_of_transition(q: RedisQueue) -> None:
    steps = [
        lambda: q.submit([task("a", priority=1), task("b", priority=1), task("c", priority=5)], NOW),
        lambda: q.submit([task("d", "a", priority=5), task("e", priority=9, model="m")], NOW + 1),
        lambda: q.claim("w", NOW + 2, POLICY, 30),  # e: the highest priority
        lambda: q.release("e", "w", NOW + 3, "handed back"),  # back in its old place
        lambda: q.claim("w", NOW + 4, POLICY, 30),
        lambda: q.complete("e", "w", {}, NOW + 5),
        lambda: q.claim("w", NOW + 6, POLICY, 30),  # c
        lambda: q.fail("c", "w", "boom", NOW + 7),  # to delayed
        lambda: q.promote_due(NOW + 100),  # c back in its lane
        lambda: q.cancel("b", NOW + 101, "not needed"),
        lambda: q.claim("w", NOW + 102, POLICY, 30),  # c
        lambda: q.claim("w", NOW + 103, POLICY, 30),  # a
        lambda: q.complete("a", "w", {}, NOW + 104),  # releases d
        lambda: q.reap_stale(NOW + 1000),  # c's lease ended: back to its lane
    ]
    for k, step in enumerate(steps):
        step()
        assert q.heads()[0] == from_lanes(q), f"after step {k}"
    assert q.heads()[0] and from_lanes(q)  # (not trivially equal: work is still waiting)


def test_data_written_before_the_hash_was_kept_is_rebuilt_from_the_lanes(q: RedisQueue) -> None:
    q.submit([task("a", priority=1), task("b", priority=7), task("c", priority=7)], NOW)
    q.r.delete(q.key("hd"))  # as an older galaxy left the cluster: lanes, no hash
    q.submit([task("x", priority=3)], NOW + 1)  # a script keeps its own lane's entry: one of four
    assert q.heads()[0] == from_lanes(q)  # the read finds hd naming fewer lanes: rebuilt from every lane
    assert len(q.r.hkeys(q.key("hd"))) == 3
    claimed = q.claim("w", NOW + 2, POLICY, 30)
    assert claimed is not None and claimed.task_id == "b"


def test_a_lane_an_older_galaxy_queued_into_is_found(q: RedisQueue) -> None:
    q.submit([task("a", priority=1)], NOW)
    assert q.heads()[0] == from_lanes(q)
    lane = codec.lane_key(task("old", priority=8))
    q.r.zadd(q.key(f"lane:{lane}"), {"old": codec.us(NOW)})  # what an older submit does: no hd entry
    q.r.sadd(q.key("lanes"), lane)
    q.r.hset(q.key("t:old"), mapping={"st": "queue", "lane": lane, "cls": lane.split("|")[0], "j": codec.encode_task(
        task("old", priority=8)), "retry": "0", "maxr": "3", "deps": "[]", "enq": str(codec.us(NOW))})
    claimed = q.claim("w", NOW + 1, POLICY, 30)  # hd names one lane of two: rebuilt, the new lane offered
    assert claimed is not None and claimed.task_id == "old"


def test_a_stale_entry_is_mended_by_the_claim_it_misled(q: RedisQueue) -> None:
    q.submit([task("real", priority=4)], NOW)
    lane = codec.lane_key(task("real", priority=4))
    q.r.hset(q.key("hd"), lane, f"ghost {codec.us(NOW)} 1")  # as a writer that does not keep hd leaves it
    claimed = q.claim("w", NOW + 1, POLICY, 30)  # offered the ghost, refused, answered the mended heads
    assert claimed is not None and claimed.task_id == "real"
    assert q.claim_conflicts == 1
    assert q.heads()[0] == from_lanes(q) == {}


def _claim_cost(url: str, lanes: int) -> int:
    return claim_cost(url, f"hdc{next(_names)}", [[task(f"t{i}", priority=1 + i % lanes) for i in range(4 * lanes)]])


def test_claim_and_complete_work_does_not_grow_with_the_lanes(redis_server: RedisServer) -> None:  # noqa: F811
    """A completion hands back every head: one HGETALL, however many lanes (was two calls a lane)."""
    assert _claim_cost(redis_server.url, 1) == _claim_cost(redis_server.url, 10)
