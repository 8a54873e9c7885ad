"""Completed records do not pile up in Redis: ``[store] keep_completed_s`` after its completion a task's
record (task, result, attempts) is removed in bounded batches, by an index sorted by completion time
(no scan); a dependency on a pruned task still counts as met; the supervisor's tick prunes
(engine/store/retention.py). On a real redis-server, with the caller's clock (``QueueClock.CALLER``).

The file store keeps ``complete/`` for ever, so this is not in the conformance suite: the two stores
agree on every dependency a file root can have (a complete parent is met, an unknown id is refused).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from engine.clock import FakeClock
from engine.config import GalaxyConfig, GroupConfig, Thresholds, load_config
from engine.model import Task, TaskValidationError
from engine.paths import RigPaths
from engine.queue.protocol import Place
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.store.open_queue import completed_retention, open_queue
from engine.store.redis.queue import BATCH, QueueClock, RedisQueue
from engine.store.retention import PRUNE_EVERY_S, CompletedRetention
from engine.store.settings import DEFAULT_KEEP_COMPLETED_S, StoreConfig
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.sim_rig import SimulatedRig
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401

POLICY = make_claim_policy(WorkerProfile("w1"))
NOW = 1_000_000.0
DAY = 86_400.0
_names = itertools.count()


@pytest.fixture
def q(client: redis.Redis) -> Iterator[RedisQueue]:
    queue = RedisQueue(client, f"keep{next(_names)}", clock=QueueClock.CALLER)
    yield queue
    queue.close()


def task(task_id: str, *deps: str, **kw: Any) -> Task:
    return Task(task_id, task_id, command=f"echo {task_id}", depends_on=deps, **kw)


def run(q: RedisQueue, task_id: str, at: float) -> None:
    claimed = q.claim("w1", at, POLICY, 30)
    assert claimed is not None and claimed.task_id == task_id
    q.complete(task_id, "w1", {"out": task_id}, at)


def test_records_older_than_keep_are_removed_and_the_rest_kept(q: RedisQueue) -> None:
    q.submit([task("old")], NOW)
    run(q, "old", NOW)
    q.submit([task("new")], NOW + DAY)
    run(q, "new", NOW + DAY)
    assert q.prune_completed(NOW + DAY, 2 * DAY) == []  # nothing is two days old yet
    assert q.prune_completed(NOW + 2 * DAY + 1, 2 * DAY) == ["old"]
    assert q.get("old") is None and q.where("old") is None
    assert not q.r.exists(q.key("t:old"), q.key("a:old"))
    kept = q.get("new")
    assert kept is not None and kept.result == {"out": "new"}
    assert q.counts().total("complete") == 2  # completions ever, as the file store's ledger counts them
    assert [t.task_id for t in q.recent("complete", 10)] == ["new"]  # the recent list skips a pruned id
    assert q.prune_completed(NOW + 2 * DAY + 1, 2 * DAY) == []  # once


def test_a_dependency_on_a_pruned_task_counts_as_met(q: RedisQueue) -> None:
    q.submit([task("parent")], NOW)
    run(q, "parent", NOW)
    assert q.prune_completed(NOW + 10, 5) == ["parent"]
    q.submit([task("child", "parent")], NOW + 20)  # known, and met: queued at once, not held
    assert q.where("child") is Place.QUEUE
    with pytest.raises(TaskValidationError, match="unknown dependency 'nobody'"):
        q.submit([task("orphan", "nobody")], NOW + 20)  # an id never submitted is still refused


def test_a_cascade_judged_again_after_its_other_parent_was_pruned(q: RedisQueue) -> None:
    q.submit([task("a"), task("b", max_retries=0), task("c", "a", "b")], NOW)
    run(q, "a", NOW)
    claimed = q.claim("w1", NOW, POLICY, 30)
    assert claimed is not None and claimed.task_id == "b"
    q.fail("b", "w1", "boom", NOW, retryable=False)
    assert q.where("c") is Place.FAILED  # in cascade behind b
    assert q.prune_completed(NOW + 10, 5) == ["a"]
    assert q.retry("b", NOW + 20).ok
    assert q.where("c") is Place.HELD  # waits on b again; a, pruned, is met
    run(q, "b", NOW + 21)
    assert q.where("c") is Place.QUEUE


def test_a_pruned_id_may_name_a_new_task(q: RedisQueue) -> None:
    q.submit([task("x")], NOW)
    run(q, "x", NOW)
    assert q.prune_completed(NOW + 10, 5) == ["x"]
    q.submit([task("x"), task("y", "x")], NOW + 20)  # x is a new task now: y waits for it
    assert q.where("x") is Place.QUEUE and q.where("y") is Place.HELD


def test_pruning_goes_in_bounded_batches_oldest_first(q: RedisQueue) -> None:
    n = BATCH + 50
    q.submit([task(f"t{i:04d}") for i in range(n)], NOW)
    for i in range(n):
        run(q, f"t{i:04d}", NOW + i)
    one = q.run("prune", NOW + 10_000, [str(int(5e6)), 100, 1_000_000])  # one script: at most its batch
    assert one["pruned"] == [f"t{i:04d}" for i in range(100)] and one["more"] == 1
    rest = q.prune_completed(NOW + 10_000, 5)
    assert rest == [f"t{i:04d}" for i in range(100, n)]
    assert q.r.zcard(q.key("done")) == 0


def test_the_remembered_pruned_ids_are_capped(q: RedisQueue) -> None:
    q.submit([task(f"p{i}") for i in range(5)], NOW)
    for i in range(5):
        run(q, f"p{i}", NOW + i)
    assert len(q.prune_completed(NOW + 100, 1, pruned_kept=3)) == 5
    assert sorted(q.r.zrange(q.key("pruned"), 0, -1)) == ["p2", "p3", "p4"]  # the newest three
    with pytest.raises(TaskValidationError, match="unknown dependency 'p0'"):
        q.submit([task("late", "p0")], NOW + 200)


def test_the_retention_policy_prunes_once_a_minute_and_at_once_while_a_backlog_remains() -> None:
    calls: list[tuple[float, float]] = []
    backlog = [["a"], ["b"], []]

    class Pruner:
        def prune_completed(self, now: float, keep_s: float) -> list[str]:
            calls.append((now, keep_s))
            return backlog.pop(0) if backlog else []

    keep = CompletedRetention(Pruner(), 3600.0)
    assert keep.tick(100.0) == ["a"]
    assert keep.tick(101.0) == ["b"]  # pruned something: due again at the next tick
    assert keep.tick(102.0) == []
    assert keep.tick(102.0 + PRUNE_EVERY_S - 1) == []  # nothing left: not asked again within a minute
    assert keep.tick(102.0 + PRUNE_EVERY_S) == []
    assert calls == [(100.0, 3600.0), (101.0, 3600.0), (102.0, 3600.0), (102.0 + PRUNE_EVERY_S, 3600.0)]


def test_keep_completed_s_is_read_and_only_a_redis_store_prunes(tmp_path: Any, redis_server: RedisServer) -> None:  # noqa: F811
    conf = tmp_path / "galaxy.toml"
    conf.write_text(f'[store]\nurl = "{redis_server.url}"\nkeep_completed_s = 3600\n')
    cfg = load_config(conf, gpu_count=0)
    assert cfg.store.keep_completed_s == 3600.0 and StoreConfig().keep_completed_s == DEFAULT_KEEP_COMPLETED_S
    paths = RigPaths(tmp_path / "shared")
    queue = open_queue(cfg.store, paths)
    try:
        keep = completed_retention(cfg.store, queue)
        assert keep is not None and keep.keep_s == 3600.0
        from dataclasses import replace
        assert completed_retention(replace(cfg.store, keep_completed_s=0.0), queue) is None  # 0: for ever
    finally:
        queue.close()
    file_queue = open_queue(StoreConfig(), paths)
    try:
        assert completed_retention(StoreConfig(), file_queue) is None  # the file store keeps complete/
    finally:
        file_queue.close()


def test_the_supervisors_tick_prunes_with_the_stores_work(q: RedisQueue, tmp_path: Any) -> None:
    q.submit([task("done-long-ago")], NOW)
    run(q, "done-long-ago", NOW)
    clock = FakeClock(NOW + 3600.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="test", groups=(GroupConfig("w1", gpus=(0,)),), thresholds=Thresholds(), source=None,
                       origin="test config")
    logs: list[tuple[str, dict[str, Any]]] = []
    sup = Supervisor(cfg, paths, q, SimulatedRig.with_count(1, clock=clock), FakeLauncher(), simulated=True,
                     pid=4242, log=lambda msg, **kw: logs.append((msg, kw)), retention=CompletedRetention(q, 60.0))
    sup.start(clock.now())
    sup.tick(clock.now())
    assert q.get("done-long-ago") is None
    assert ("queue prune_completed", {"tasks": ["done-long-ago"], "count": 1}) in logs
