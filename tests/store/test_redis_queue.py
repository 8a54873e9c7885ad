"""RedisQueue against a real redis-server (tests/support/redis_server.py): owner tokens, leases by
the server's clock, request ids and resends after a lost reply, the eviction policy, fan-in and
cascades, waking an idle worker, and work per script that does not grow with depth.

Each test gets its own cluster namespace on one module-wide server."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from engine.model import Task, TaskClass, TaskValidationError
from engine.queue.protocol import Place, Refusal
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.store.redis.client import StoreConfigError, connect, key_prefix, require_no_eviction
from engine.store.redis.lua import SCRIPTS
from engine.store.redis.queue import BATCH, QueueClock, RedisQueue, new_request_id
from engine.store.redis.replies import heads_of
from engine.store.redis.scripts import KeptConnection
from tests.store.claim_cost import claim_cost, commands_run
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401

POLICY = make_claim_policy(WorkerProfile("w"))
_names = itertools.count()
NOW = 1_000_000.0


@pytest.fixture
def cluster() -> str:
    return f"t{next(_names)}"


@pytest.fixture
def q(client: redis.Redis, cluster: str) -> Iterator[RedisQueue]:
    queue = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    yield queue
    queue.close()


def task(task_id: str, *deps: str, **kw: Any) -> Task:
    return Task(task_id, task_id, command=f"echo {task_id}", depends_on=deps, **kw)


def server_now(c: redis.Redis) -> float:
    s, us = c.time()
    return float(s) + us / 1e6


# ---------------------------------------------------------------- owner tokens
def test_only_the_current_owner_records_anything(client: redis.Redis, cluster: str) -> None:
    a = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    b = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    a.submit([task("t1")], NOW)
    claimed = a.claim("wa", NOW, POLICY, 30)
    assert claimed is not None and claimed.lease_owner == "wa"
    # another process under the same worker id holds no token: refused
    assert not b.heartbeat("t1", "wa", NOW + 1, 30)
    b.complete("t1", "wa", {"by": "b"}, NOW + 1)
    assert a.where("t1") is Place.PROCESSING
    # wa stops past its lease; it is reaped and wb takes the task again
    assert a.reap_stale(NOW + 31) == ["t1"]
    again = b.claim("wb", NOW + 32, POLICY, 30)
    assert again is not None and again.task_id == "t1"
    # wa wakes: heartbeat, complete, fail and release are all refused
    assert not a.heartbeat("t1", "wa", NOW + 33, 30)
    a.complete("t1", "wa", {"by": "wa"}, NOW + 33)
    a.fail("t1", "wa", "late", NOW + 33)
    a.release("t1", "wa", NOW + 33, "late")
    assert b.claim_of("t1") is not None and b.claim_of("t1").worker_id == "wb"  # type: ignore[union-attr]
    b.complete("t1", "wb", {"by": "wb"}, NOW + 34)
    done = b.get("t1")
    assert done is not None and done.result == {"by": "wb"}
    assert [at.outcome for at in done.attempts] == ["lost", "ok"]
    assert b.counts().total("complete") == 1


def test_a_reaped_worker_cannot_complete_even_before_anyone_claims_again(q: RedisQueue) -> None:
    q.submit([task("t1")], NOW)
    assert q.claim("w1", NOW, POLICY, 10) is not None
    q.reap_stale(NOW + 11)
    q.complete("t1", "w1", {"late": True}, NOW + 12)
    assert q.where("t1") is Place.QUEUE
    assert q.counts().total("complete") == 0


# ---------------------------------------------------------------- the server's clock
def test_lease_deadline_comes_from_the_redis_clock_not_the_worker(client: redis.Redis, cluster: str) -> None:
    q = RedisQueue(client, cluster)  # QueueClock.SERVER
    q.submit([task("t1")], time.time())
    worker_clock = time.time() + 86_400.0  # a worker whose clock runs a day ahead
    before = server_now(client)
    claimed = q.claim("w1", worker_clock, POLICY, 30)
    after = server_now(client)
    assert claimed is not None and claimed.lease_expires is not None
    assert before + 30 <= claimed.lease_expires + 1e-6 and claimed.lease_expires <= after + 30 + 1e-6
    # the fast worker's reaper does not take a live claim
    assert q.reap_stale(worker_clock + 3600) == []
    assert q.where("t1") is Place.PROCESSING
    # a heartbeat from a worker whose clock lags a day still extends from the server's now
    assert q.heartbeat("t1", "w1", time.time() - 86_400.0, 60)
    view = q.claim_of("t1")
    assert view is not None and view.lease_expires >= server_now(client) + 50


def test_an_expired_lease_is_reaped_by_the_server_clock(client: redis.Redis, cluster: str) -> None:
    q = RedisQueue(client, cluster)
    q.submit([task("t1")], time.time())
    claimed = q.claim("w1", time.time(), POLICY, 0.001)
    assert claimed is not None and claimed.lease_expires is not None
    while server_now(client) <= claimed.lease_expires:  # wait on the server's clock, not ours
        time.sleep(0.002)
    assert q.reap_stale(time.time() - 86_400.0) == ["t1"]  # the caller's (slow) clock plays no part
    assert q.where("t1") is Place.QUEUE


# ---------------------------------------------------------------- resends after a lost reply
class LosesClaimReply(KeptConnection):
    """The queue's real script connection, killed (CLIENT KILL) right after a claim script ran: the
    caller never sees the reply, as when a network drops it, and resends."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)
        self.killer = client
        self.claim_sha = ""
        self.kills = 0

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | int) -> Any:
        if sha != self.claim_sha or self.kills:
            return super().evalsha(sha, numkeys, *keys_and_args)
        own_id = self.call("CLIENT", "ID")
        super().evalsha(sha, numkeys, *keys_and_args)  # it ran; its reply is what the kill loses
        self.kills += 1
        self.killer.client_kill_filter(_id=own_id)
        self.close()
        raise redis.ConnectionError("connection killed after the claim script ran (reply lost)")


def test_claim_resent_after_client_kill_claims_once(client: redis.Redis, cluster: str) -> None:
    lossy = LosesClaimReply(client)
    q = RedisQueue(client, cluster, clock=QueueClock.CALLER, scripts=lossy)
    lossy.claim_sha = q._scripts["claim"].sha
    q.submit([task("t1"), task("t2")], NOW)
    claimed = q.claim("w1", NOW, POLICY, 30)
    assert lossy.kills == 1
    assert claimed is not None and claimed.task_id == "t1"
    counts = q.counts()
    assert counts.total("processing") == 1 and counts.total("queue") == 1
    other = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    nxt = other.claim("w2", NOW, POLICY, 30)
    assert nxt is not None and nxt.task_id == "t2"  # t1 was neither lost nor offered twice
    assert other.claim("w2", NOW, POLICY, 30) is None
    q.complete("t1", "w1", {}, NOW + 1)  # the resent claim's token is the live one
    assert q.where("t1") is Place.COMPLETE
    other.close()
    q.close()


def test_completion_resent_after_a_lost_reply_is_recorded_once(q: RedisQueue) -> None:
    q.submit([task("a"), task("c", "a")], NOW)
    assert q.claim("w1", NOW, POLICY, 30) is not None
    token = q.owner_token("a")
    assert token is not None
    args = ["a", token, json.dumps({"n": 1}), json.dumps({"number": 1, "worker_id": "w1", "outcome": "ok"})]
    first = q.run("complete", NOW + 1, args)
    again = q.run("complete", NOW + 1, args)  # the same command, sent again
    assert first["ok"] == 1 and first["released"] == ["c"]
    assert again == {"ok": 0, "state": "done", "released": ["c"]}  # what it did: its events are still owed
    assert q.counts().total("complete") == 1 and q.counts().total("queue") == 1
    assert len(q.get("a").attempts) == 1  # type: ignore[union-attr]


def test_operator_action_resent_with_its_request_id_applies_once(q: RedisQueue) -> None:
    q.submit([task("a")], NOW)
    q.claim("w1", NOW, POLICY, 30)
    q.fail("a", "w1", "boom", NOW + 1, retryable=False)
    rid = new_request_id()
    first = q.run("retry", NOW + 2, ["a"], request_id=rid)
    assert first["ok"] == 1
    q.claim("w1", NOW + 3, POLICY, 30)
    q.fail("a", "w1", "boom again", NOW + 4, retryable=False)
    assert q.where("a") is Place.FAILED
    resent = q.run("retry", NOW + 5, ["a"], request_id=rid)  # the first retry's resend: not a second retry
    assert resent == first
    assert q.where("a") is Place.FAILED


def test_submit_resent_after_a_lost_reply_is_not_refused_as_a_duplicate(q: RedisQueue) -> None:
    meta = [{"id": "a", "cls": "cpu", "lane": "cpu||5|", "maxr": 3, "retry": 0, "deps": []}]
    args = [json.dumps(meta), "req-1", json.dumps(task("a").to_dict())]
    assert q.run("submit", NOW, args)["ok"] == 1
    assert q.run("submit", NOW, args) == {"ok": 1, "replayed": 1}
    assert q.counts().total("queue") == 1
    with pytest.raises(TaskValidationError, match="already exists"):
        q.submit([task("a")], NOW)


# ---------------------------------------------------------------- eviction
def test_a_redis_that_may_evict_keys_is_refused(client: redis.Redis, cluster: str) -> None:
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(StoreConfigError, match=r"allkeys-lru.*noeviction"):
            RedisQueue(client, cluster)
        with pytest.raises(StoreConfigError):
            require_no_eviction(client)
    finally:
        client.config_set("maxmemory-policy", "noeviction")
    RedisQueue(client, cluster).close()


def test_keys_are_namespaced_by_cluster(q: RedisQueue, client: redis.Redis, cluster: str) -> None:
    assert key_prefix(cluster) == f"galaxy:{{{cluster}}}:"
    q.submit([task("a")], NOW)
    assert client.exists(f"galaxy:{{{cluster}}}:t:a") == 1
    other = RedisQueue(client, cluster + "x", clock=QueueClock.CALLER)
    assert other.get("a") is None and other.claim("w", NOW, POLICY, 30) is None
    with pytest.raises(StoreConfigError):
        key_prefix("bad name")


# ---------------------------------------------------------------- dependencies
def test_fan_in_is_released_once_after_the_last_parent(q: RedisQueue) -> None:
    q.submit([task("p1"), task("p2"), task("p3"), task("child", "p1", "p2", "p3")], NOW)
    for i in range(3):
        t = q.claim("w", NOW + i, POLICY, 30)
        assert t is not None and t.task_id.startswith("p")
        assert q.where("child") is Place.HELD
        q.complete(t.task_id, "w", {}, NOW + i)
    assert q.where("child") is Place.QUEUE
    assert q.counts().total("queue") == 1 and q.counts().total("held") == 0
    c = q.claim("w", NOW + 5, POLICY, 30)
    assert c is not None and c.task_id == "child"
    assert q.claim("w", NOW + 5, POLICY, 30) is None


def test_cascade_fails_the_chain_and_retry_brings_it_back(q: RedisQueue) -> None:
    q.submit([task("a", max_retries=0), task("b", "a"), task("c", "b"), task("side")], NOW)
    t = q.claim("w", NOW, POLICY, 30)
    assert t is not None and t.task_id == "a"
    q.fail("a", "w", "exit code 2: disk full", NOW + 1)
    b, c = q.get("b"), q.get("c")
    assert b is not None and b.error == "dependency a failed: exit code 2: disk full (gave up after 1 attempts)"
    assert c is not None and c.error == "dependency a failed (via b): exit code 2: disk full (gave up after 1 attempts)"
    assert q.counts().total("failed") == 3 and q.counts().total("held") == 0
    refused = q.retry("b", NOW + 2)
    assert not refused and refused.refusal is Refusal.DEPENDENCY_FAILED
    assert q.retry("a", NOW + 2)
    assert (q.where("a"), q.where("b"), q.where("c")) == (Place.QUEUE, Place.HELD, Place.HELD)
    assert q.counts().total("failed") == 0
    for expect in ("a", "side", "b", "c"):
        got = q.claim("w", NOW + 3, POLICY, 30)
        assert got is not None and got.task_id in {expect, "side", "a"}
        q.complete(got.task_id, "w", {}, NOW + 3)
    assert q.counts().total("complete") == 4


def test_submit_is_all_or_nothing(q: RedisQueue) -> None:
    with pytest.raises(TaskValidationError, match="unknown dependency 'nope'"):
        q.submit([task("a"), task("b", "nope")], NOW)
    assert q.get("a") is None and q.counts().total("queue") == 0


def test_cancel_a_running_task_fails_its_dependents_and_refuses_the_owner(q: RedisQueue) -> None:
    q.submit([task("a"), task("b", "a")], NOW)
    q.claim("w", NOW, POLICY, 30)
    assert q.cancel("a", NOW + 1, "operator")
    assert not q.heartbeat("a", "w", NOW + 2, 30)
    assert q.get("b").error == "dependency a failed: cancelled: operator"  # type: ignore[union-attr]
    assert q.cancel("a", NOW + 3, "again").refusal is Refusal.NOT_FOUND


# ---------------------------------------------------------------- waking
def test_an_idle_worker_is_woken_by_a_submit_from_another_client(client: redis.Redis, cluster: str,
                                                                  redis_server: RedisServer) -> None:  # noqa: F811
    waiter = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    assert waiter.claim("w", NOW, POLICY, 30) is None
    woke: list[bool] = []
    subscribed = threading.Event()

    def wait() -> None:
        subscribed.set()
        woke.append(waiter.wait_for_change(60.0))

    th = threading.Thread(target=wait)
    th.start()
    subscribed.wait()
    RedisQueue(connect(redis_server.url), cluster, clock=QueueClock.CALLER).submit([task("x")], NOW)
    th.join(timeout=60)
    assert woke == [True]


def test_wait_for_change_times_out_when_nothing_changes(q: RedisQueue) -> None:
    assert q.claim("w", NOW, POLICY, 30) is None
    assert q.wait_for_change(0.05) is False


# ---------------------------------------------------------------- bounded work
def _script_runs(client: redis.Redis) -> int:
    """Scripts Redis ran (an EVALSHA refused with NOSCRIPT, before the client loads it, is not one)."""
    stats = client.info("commandstats")["cmdstat_evalsha"]
    return int(stats["calls"]) - int(stats.get("failed_calls", 0))


def _claim_cost(url: str, cluster: str, depth: int) -> int:
    batches = [[task(f"d{i}") for i in range(start, min(depth, start + 2000))] for start in range(0, depth, 2000)]
    return claim_cost(url, cluster, [*batches, [task("llm1", task_class=TaskClass.LLM, model="m")]])


def test_claim_and_complete_work_does_not_grow_with_depth(redis_server: RedisServer, cluster: str) -> None:  # noqa: F811
    """Counted in commands Redis ran (scripts' own calls included), not timed."""
    assert _claim_cost(redis_server.url, cluster + "s", 10) == _claim_cost(redis_server.url, cluster + "d", 10_000)


def test_reap_works_in_bounded_batches(q: RedisQueue, client: redis.Redis) -> None:
    n = BATCH * 2 + 7
    q.submit([task(f"r{i}") for i in range(n)], NOW)
    for _ in range(n):
        assert q.claim("w", NOW, POLICY, 10) is not None
    before = _script_runs(client)
    assert len(q.reap_stale(NOW + 11)) == n
    assert _script_runs(client) - before == 3  # ceil(n / BATCH)


def test_no_script_scans_the_keyspace() -> None:
    for name, source in SCRIPTS.items():
        upper = source.upper()
        for banned in ("'KEYS'", "'SCAN'", "'HSCAN'", "'SSCAN'", "'ZSCAN'", "'FLUSHDB'"):
            assert banned not in upper, f"script {name} calls {banned}"
        assert "ZRANGEBYSCORE', P .. 'PROC'" not in upper or "'LIMIT'" in upper


def test_a_claim_after_a_completion_sees_work_submitted_since(client: redis.Redis, cluster: str) -> None:
    """The lane heads a completion hands to the next claim are refused by the claim script once
    something became claimable since: the policy chooses again among the heads as they are now."""
    q = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    other = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    q.submit([task("low1", priority=1), task("low2", priority=1)], NOW)
    first = q.claim("w", NOW, POLICY, 30)
    assert first is not None and first.task_id == "low1"
    q.complete("low1", "w", {}, NOW)
    other.submit([task("urgent", priority=9)], NOW)
    nxt = q.claim("w", NOW, POLICY, 30)
    assert nxt is not None and nxt.task_id == "urgent"
    q.complete("urgent", "w", {}, NOW)
    last = q.claim("w", NOW, POLICY, 30)
    assert last is not None and last.task_id == "low2"
    q.complete("low2", "w", {}, NOW)
    other.submit([task("after-empty")], NOW)  # the kept view said "nothing": read again before None
    again = q.claim("w", NOW, POLICY, 30)
    assert again is not None and again.task_id == "after-empty"


def test_a_taken_head_is_replaced_only_by_the_same_candidate(q: RedisQueue) -> None:
    """Claiming with a view whose head another worker took: the next task of that lane enqueued at
    the same time is the same choice for the policy (taken when the caller says so); one enqueued
    later is not (the answer is a conflict with the heads as they are now)."""
    q.submit([task("a1"), task("a2")], NOW)
    q.submit([task("a3")], NOW + 1)
    heads, ver = q.heads()
    (lane, (head, enq, depth)), = heads.items()
    assert (head, depth) == ("a1", 3)
    assert q.claim("w1", NOW, POLICY, 30) is not None  # another worker takes a1
    base = [lane, "a1", "w2", "tok-1", "30000000", ver, "inst"]
    strict = q.run("claim", NOW, [*base, ""])
    assert strict["ok"] == 0 and heads_of(strict)[0][lane][0] == "a2"
    same = q.run("claim", NOW, [*base[:3], "tok-2", *base[4:], str(int(enq))])
    assert same["ok"] == 1 and same["id"] == "a2"
    later = q.run("claim", NOW, [*base[:3], "tok-3", *base[4:], str(int(enq))])  # a3 came a second later
    assert later["ok"] == 0 and heads_of(later)[0][lane][0] == "a3"
    assert q.where("a3") is Place.QUEUE


def test_submit_keeps_a_moved_tasks_history_and_refuses_a_task_too_big(q: RedisQueue) -> None:
    from engine.model import Attempt

    moved = task("m", retry_count=1, attempts=(Attempt(1, "old-w", NOW - 60, NOW - 50, "lost"),))
    q.submit([moved], NOW)
    got = q.get("m")
    assert got is not None and got.retry_count == 1 and [a.worker_id for a in got.attempts] == ["old-w"]
    with pytest.raises(TaskValidationError, match="larger than"):
        q.submit([task("huge", params={"blob": "x" * (1 << 20)})], NOW)
    assert q.get("huge") is None


def test_one_heartbeat_call_extends_every_claim_a_worker_holds(q: RedisQueue, client: redis.Redis) -> None:
    q.submit([task("h1"), task("h2")], NOW)
    assert q.claim("w", NOW, POLICY, 10) is not None and q.claim("w", NOW, POLICY, 10) is not None
    before = _script_runs(client)
    assert q.heartbeat_many([("h1", "w"), ("h2", "w"), ("h3", "w")], NOW + 5, 60) == {"h3": False, "h1": True,
                                                                                       "h2": True}
    assert _script_runs(client) - before == 1
    assert {c.task_id: c.lease_expires for c in q.claims("w")} == {"h1": NOW + 65, "h2": NOW + 65}
    assert q.reap_stale(NOW + 20) == []


def test_wait_for_change_wakes_on_the_wake_pipe_and_the_watched_control_file(q: RedisQueue, tmp_path: Any) -> None:
    import os

    r, w = os.pipe()
    try:
        os.write(w, b"x")
        assert q.wait_for_change(30.0, wake_fd=r) is True
    finally:
        os.close(r)
        os.close(w)
    q.watch(tmp_path, frozenset({"control.json"}))
    done: list[bool] = []
    started = threading.Event()

    def wait() -> None:
        started.set()
        done.append(q.wait_for_change(30.0))

    th = threading.Thread(target=wait)
    th.start()
    started.wait()
    (tmp_path / "other.json").write_text("{}")  # not the watched name: the wait goes on
    (tmp_path / "control.json").write_text("{}")
    th.join(timeout=30)
    assert done == [True]


def test_a_damaged_task_record_is_failed_with_the_reason_never_run(q: RedisQueue, client: redis.Redis,
                                                                    cluster: str) -> None:
    q.submit([task("bad"), task("good")], NOW)
    client.hset(f"galaxy:{{{cluster}}}:t:bad", "j", '{"task_id": "bad", "name": 7}')  # written by someone else
    got = q.claim("w", NOW, POLICY, 30)
    assert got is not None and got.task_id == "good"
    assert q.where("bad") is Place.FAILED
    assert "invalid task record" in (client.hget(f"galaxy:{{{cluster}}}:t:bad", "err") or "")
    assert q.counts().total("failed") == 1 and q.counts().total("processing") == 1


def test_a_completion_that_releases_dependents_hands_back_a_view_the_next_claim_can_use(q: RedisQueue) -> None:
    q.submit([task("parent"), task("child", "parent")], NOW)
    assert q.claim("w", NOW, POLICY, 30) is not None
    q.complete("parent", "w", {}, NOW)
    before = q.claim_conflicts
    got = q.claim("w", NOW, POLICY, 30)
    assert got is not None and got.task_id == "child"
    assert q.claim_conflicts == before  # the released child was in the view: no conflict, no second read


def test_an_idle_wait_costs_no_command_not_a_poll(q: RedisQueue, client: redis.Redis) -> None:
    assert q.claim("w", NOW, POLICY, 30) is None
    q.wait_for_change(0.01)  # the first wait subscribes (SUBSCRIBE, GET): the subscription is kept
    before = commands_run(client)
    assert q.wait_for_change(0.3) is False
    spent = commands_run(client) - before - 1  # the INFO above
    assert spent <= 1, f"an idle wait ran {spent} commands"  # at most redis-py's health-check PING
