"""The idle worker's wake-up on a real redis-server: one subscription kept for the worker's life
(engine/store/redis/waker.py), no wake missed between a claim and the wait, none taken twice, and a
lost subscription connection made good by reading the counter again."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
import redis

from engine.fdwait import readable
from engine.model import Task
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.store.redis import codec
from engine.store.redis.client import connect
from engine.store.redis.queue import QueueClock, RedisQueue
from tests.support.redis_server import RedisServer

POLICY = make_claim_policy(WorkerProfile("w"))
NOW = 1_000_000.0
_names = itertools.count()


@pytest.fixture
def cluster() -> str:
    return f"wk{next(_names)}"


@pytest.fixture
def idle(client: redis.Redis, cluster: str) -> Iterator[RedisQueue]:
    """A worker's queue with nothing to claim, its subscription open (a first wait ran)."""
    q = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    assert q.claim("w", NOW, POLICY, 30) is None
    assert q.wait_for_change(0.01) is False
    yield q
    q.close()


@pytest.fixture
def other(redis_server: RedisServer, cluster: str) -> Iterator[RedisQueue]:
    q = RedisQueue(connect(redis_server.url), cluster, clock=QueueClock.CALLER)
    yield q
    q.close()
    q.r.close()


def _task(task_id: str) -> Task:
    return Task(task_id, task_id, command="true")


def _stat(client: redis.Redis, name: str) -> int:
    return int(client.info("stats")[name])


def test_waits_share_one_subscription_and_cost_no_command(idle: RedisQueue, other: RedisQueue,
                                                          client: redis.Redis) -> None:
    other.submit([_task("first")], NOW)  # every connection the test uses is open from here on
    assert idle.wait_for_change(60.0) is True
    assert idle.claim("w", NOW, POLICY, 30) is not None
    assert idle.claim("w", NOW, POLICY, 30) is None
    connections = _stat(client, "total_connections_received")
    calls = _stat(client, "total_commands_processed")
    for _ in range(3):
        assert idle.wait_for_change(0.05) is False
    assert _stat(client, "total_commands_processed") - calls <= 2  # the INFO above; at most a health-check PING
    for k in range(3):
        other.submit([_task(f"t{k}")], NOW)
        assert idle.wait_for_change(60.0) is True
        assert idle.claim("w", NOW, POLICY, 30) is not None
    assert _stat(client, "total_connections_received") == connections  # no connection per wait


def test_a_change_between_the_claim_and_the_wait_is_not_missed(idle: RedisQueue, other: RedisQueue) -> None:
    other.submit([_task("a")], NOW)  # after the claim looked, before this wait: its wake is already here
    assert idle.wait_for_change(60.0) is True
    assert idle.claim("w", NOW, POLICY, 30) is not None


def test_a_change_before_the_first_subscription_is_read_from_the_counter(client: redis.Redis, cluster: str,
                                                                         other: RedisQueue) -> None:
    q = RedisQueue(client, cluster, clock=QueueClock.CALLER)
    try:
        assert q.claim("w", NOW, POLICY, 30) is None
        other.submit([_task("a")], NOW)  # published while nobody listened
        assert q.wait_for_change(60.0) is True
    finally:
        q.close()


def test_wakes_published_before_the_claim_looked_do_not_wake_it_again(idle: RedisQueue, other: RedisQueue) -> None:
    other.submit([_task("a"), _task("b")], NOW)
    other.submit([_task("c")], NOW)  # two wakes buffered on the subscription while the worker is busy
    for _ in range(3):
        assert idle.claim("w", NOW, POLICY, 30) is not None
    assert idle.claim("w", NOW, POLICY, 30) is None  # this claim's view counts both changes
    assert idle.wait_for_change(0.2) is False  # the buffered wakes are older than that view: read and skipped


def test_a_killed_subscription_misses_nothing_that_changed_while_it_was_down(idle: RedisQueue, other: RedisQueue,
                                                                            client: redis.Redis) -> None:
    assert client.client_kill_filter(_type="pubsub") >= 1
    other.submit([_task("a")], NOW)  # published while the subscription was gone
    assert idle.wait_for_change(60.0) is True  # reconnected, subscribed again, read the counter
    assert idle.claim("w", NOW, POLICY, 30) is not None
    assert idle.wait_for_change(0.05) is False
    other.submit([_task("b")], NOW)
    assert idle.wait_for_change(60.0) is True  # and the new subscription carries the wakes after it


def test_a_wake_without_the_counter_counts_as_a_change(idle: RedisQueue, client: redis.Redis) -> None:
    client.publish(idle.waker.channel, "1")  # as an older galaxy's scripts publish it
    assert idle.wait_for_change(60.0) is True


def test_a_wake_read_together_with_a_health_check_reply_is_not_left_unread(idle: RedisQueue, other: RedisQueue,
                                                                          client: redis.Redis) -> None:
    ps = idle.waker._ps
    ps.connection.next_health_check = 0
    ps.check_health()  # redis-py's PING on the subscription, as every 30 s
    ps.connection.next_health_check = time.monotonic() + 3600  # (and no second one during this test)
    assert readable([ps.connection._sock.fileno()], 60.0)  # its PONG is on the socket
    other.submit([_task("a")], NOW)
    client.ping()  # a round trip after the PUBLISH: Redis has written the wake behind the PONG by now
    # One read takes both; the wake must not be left in redis-py's buffer, where polling the socket never
    # sees it: it is already here, so even a wait of no time finds it.
    assert idle.wait_for_change(0.0) is True


class _Counted:
    """The queue's own script calls, counted by script (the lane heads read, the claim)."""

    def __init__(self, q: RedisQueue) -> None:
        self.inner = q.calls
        self.names = {q._scripts[name].sha: name for name in q._scripts}
        self.ran: list[str] = []

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | int) -> object:
        out = self.inner.evalsha(sha, numkeys, *keys_and_args)
        self.ran.append(self.names[sha])  # (answered: a NOSCRIPT refusal, then loaded and sent again, counts once)
        return out

    def script_load(self, script: str) -> object:
        return self.inner.script_load(script)


@pytest.fixture
def counted(idle: RedisQueue) -> _Counted:
    calls = _Counted(idle)
    idle.calls = calls
    return calls


def test_the_claim_after_a_wake_is_one_script(idle: RedisQueue, other: RedisQueue, counted: _Counted) -> None:
    other.submit([_task("a")], NOW)
    assert idle.wait_for_change(60.0) is True
    task = idle.claim("w", NOW, POLICY, 30)
    assert task is not None and task.task_id == "a"
    assert counted.ran == ["claim"]  # the wake carried the head of the lane it queued "a" in: no heads read


def test_wakes_in_a_row_are_applied_in_turn(idle: RedisQueue, other: RedisQueue, counted: _Counted,
                                           client: redis.Redis) -> None:
    other.submit([Task("low", "low", command="true", priority=1)], NOW)
    other.submit([Task("high", "high", command="true", priority=9)], NOW)  # another lane, the next change
    # Redis writes a PUBLISH's message to the subscriber after the submitter's reply, in the same pass of
    # its event loop: on a loaded machine the second wake may not be on the socket yet when the wait reads.
    # A round trip of another connection ends after that pass, so both wakes are there to be read at once.
    client.ping()
    assert idle.wait_for_change(60.0) is True  # reads both wakes
    claimed = idle.claim("w", NOW, POLICY, 30)
    assert claimed is not None and claimed.task_id == "high"  # both lanes in the view: the policy's choice
    assert counted.ran == ["claim"]


def test_a_view_whose_head_was_taken_claims_the_next_after_one_refusal(idle: RedisQueue, other: RedisQueue,
                                                                       counted: _Counted) -> None:
    other.submit([_task("a"), _task("b")], NOW)
    assert idle.wait_for_change(60.0) is True
    taken = other.claim("x", NOW, POLICY, 30)  # another worker takes the head the wake named
    assert taken is not None and taken.task_id == "a"
    claimed = idle.claim("w", NOW, POLICY, 30)
    assert claimed is not None and claimed.task_id == "b"  # the script refused "a" and answered the heads
    assert counted.ran == ["claim", "claim"]


def test_a_missed_wake_makes_the_claim_read_the_heads(idle: RedisQueue, other: RedisQueue, counted: _Counted,
                                                      client: redis.Redis) -> None:
    client.incr(idle.waker.ver_key)  # a change whose wake this worker never read
    other.submit([_task("a")], NOW)
    assert idle.wait_for_change(60.0) is True
    claimed = idle.claim("w", NOW, POLICY, 30)
    assert claimed is not None and claimed.task_id == "a"
    assert counted.ran == ["heads", "claim"]  # its wake does not follow the view's counter: heads read


def test_a_wake_past_the_lane_limit_carries_the_counter_alone(idle: RedisQueue, other: RedisQueue,
                                                              counted: _Counted) -> None:
    other.submit([Task(f"m{k}", f"m{k}", command="true", model=f"model-{k}") for k in range(17)], NOW)
    assert idle.wait_for_change(60.0) is True
    assert idle.claim("w", NOW, POLICY, 30) is not None
    assert counted.ran == ["heads", "claim"]


def test_a_false_view_never_claims_what_is_not_the_head(idle: RedisQueue, other: RedisQueue, counted: _Counted,
                                                        client: redis.Redis) -> None:
    other.submit([_task("real")], NOW)
    assert idle.claim("w", NOW, POLICY, 30) is not None  # its view now: nothing left, at the counter after "real"
    assert idle.claim("w", NOW, POLICY, 30) is None
    ver = int(client.get(idle.waker.ver_key) or 0)
    lane = codec.lane_key(_task("ghost"))
    client.publish(idle.waker.channel, f'v{ver + 1} ["{lane}", "ghost 1 1"]')  # not a script's: no ver bump
    assert idle.wait_for_change(60.0) is True
    counted.ran.clear()
    assert idle.claim("w", NOW, POLICY, 30) is None
    assert counted.ran == ["claim"]  # refused by the claim script, whose answer (the heads as they are) is final
    other.submit([_task("next")], NOW)
    assert idle.wait_for_change(60.0) is True
    claimed = idle.claim("w", NOW, POLICY, 30)
    assert claimed is not None and claimed.task_id == "next"
