"""A finish (complete, fail, release) whose reply was lost still writes its events once.

The script applied; the reply never came back; the resend (``RedisQueue.run``'s own, or the worker's
kept result recorded again after ``StoreUnavailable``) is answered "done" by the claim's token. The
events of that finish (``task_completed`` and a ``task_released`` per dependent it released,
``task_retry_scheduled``, ``task_handed_back``) are written then, once: the first try wrote none.
On a real redis-server; the reply is lost by killing the client's own connection right after the
script ran (``CLIENT KILL``), as a network that drops it would; the queue's real script connection
(engine/store/redis/scripts.py) does the losing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from engine.event_types import EventType
from engine.model import Task
from engine.queue.protocol import Place, StoreUnavailable
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.store.redis.client import connect
from engine.store.redis.queue import QueueClock, RedisQueue
from engine.store.redis.scripts import KeptConnection
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401

POLICY = make_claim_policy(WorkerProfile("w1"))
NOW = 1_000_000.0
_names = itertools.count()


class Recorder:
    """The queue's event sink: every event it writes, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[EventType, str | None, dict[str, Any]]] = []

    def emit(self, event_type: EventType, *, at: float | None = None, task_id: str | None = None,
             worker_id: str | None = None, error: str | None = None, **extra: Any) -> None:
        self.seen.append((event_type, task_id, extra))

    def of(self, kind: EventType) -> list[str | None]:
        return [task_id for k, task_id, _ in self.seen if k is kind]


class LosesReplies(KeptConnection):
    """The queue's real script connection, losing the reply of the scripts named in ``lose`` (their
    next ``times`` runs): the script runs, then its connection is killed before the reply is read."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)
        self.killer = client
        self.lose: dict[str, int] = {}
        self.lost = 0

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | int) -> Any:
        if self.lose.get(sha, 0) <= 0:
            return super().evalsha(sha, numkeys, *keys_and_args)
        own_id = self.call("CLIENT", "ID")
        super().evalsha(sha, numkeys, *keys_and_args)  # it ran; its reply is what the kill loses
        self.lose[sha] -= 1
        self.lost += 1
        self.killer.client_kill_filter(_id=own_id)
        self.close()
        raise redis.ConnectionError("connection killed after the script ran (reply lost)")


@pytest.fixture
def lossy(redis_server: RedisServer) -> Iterator[tuple[LosesReplies, RedisQueue, Recorder]]:  # noqa: F811
    client = connect(redis_server.url)
    scripts = LosesReplies(client)
    events = Recorder()
    q = RedisQueue(client, f"resend{next(_names)}", clock=QueueClock.CALLER, events=events, retries=1,
                   scripts=scripts)
    yield scripts, q, events
    q.close()
    client.close()


def lose_next(client: LosesReplies, q: RedisQueue, script: str, times: int = 1) -> None:
    client.lose[q._scripts[script].sha] = times


def test_a_completion_resent_after_a_lost_reply_writes_its_events_once(
        lossy: tuple[LosesReplies, RedisQueue, Recorder]) -> None:
    client, q, events = lossy
    q.submit([Task("a", "a", command="true"), Task("c", "c", command="true", depends_on=("a",))], NOW)
    assert q.claim("w1", NOW, POLICY, 30) is not None
    lose_next(client, q, "complete")
    q.complete("a", "w1", {"n": 1}, NOW + 1)  # applied, reply lost, resent: "done"
    assert client.lost == 1
    assert q.where("a") is Place.COMPLETE and q.where("c") is Place.QUEUE
    assert events.of(EventType.TASK_COMPLETED) == ["a"]
    assert events.of(EventType.TASK_RELEASED) == ["c"]  # the dependent the lost try released
    assert events.of(EventType.DUPLICATE_COMPLETION) == []
    q.complete("a", "w1", {"n": 1}, NOW + 2)  # a second call after the recorded one is refused, as before
    assert events.of(EventType.TASK_COMPLETED) == ["a"]
    assert events.of(EventType.DUPLICATE_COMPLETION) == ["a"]


def test_a_kept_result_recorded_again_after_every_try_was_lost_writes_its_events_once(
        lossy: tuple[LosesReplies, RedisQueue, Recorder]) -> None:
    client, q, events = lossy
    q.submit([Task("a", "a", command="true")], NOW)
    assert q.claim("w1", NOW, POLICY, 30) is not None
    lose_next(client, q, "complete", times=2)  # the try and run's one resend: the worker keeps the result
    with pytest.raises(StoreUnavailable):
        q.complete("a", "w1", {"n": 1}, NOW + 1)
    assert q.where("a") is Place.COMPLETE and events.of(EventType.TASK_COMPLETED) == []
    q.complete("a", "w1", {"n": 1}, NOW + 5)  # the kept result, recorded again when the store answers
    assert events.of(EventType.TASK_COMPLETED) == ["a"]
    task = q.get("a")
    assert task is not None and [a.outcome for a in task.attempts] == ["ok"]
    assert q.counts().total("complete") == 1


def test_a_failure_resent_after_a_lost_reply_writes_its_retry_once(
        lossy: tuple[LosesReplies, RedisQueue, Recorder]) -> None:
    client, q, events = lossy
    q.submit([Task("a", "a", command="false", max_retries=3)], NOW)
    assert q.claim("w1", NOW, POLICY, 30) is not None
    lose_next(client, q, "fail")
    q.fail("a", "w1", "exit 1", NOW + 1)
    assert q.where("a") is Place.DELAYED
    scheduled = [extra for kind, _, extra in events.seen if kind is EventType.TASK_RETRY_SCHEDULED]
    assert len(scheduled) == 1 and scheduled[0]["retry_count"] == 1
    assert scheduled[0]["not_before"] == q.next_due()  # the due time the applied try set
    assert events.of(EventType.LATE_RESULT_DISCARDED) == []


def test_a_release_resent_after_a_lost_reply_writes_its_hand_back_once(
        lossy: tuple[LosesReplies, RedisQueue, Recorder]) -> None:
    client, q, events = lossy
    q.submit([Task("a", "a", command="true")], NOW)
    assert q.claim("w1", NOW, POLICY, 30) is not None
    lose_next(client, q, "release")
    q.release("a", "w1", NOW + 1, "stopping")
    assert q.where("a") is Place.QUEUE
    assert events.of(EventType.TASK_HANDED_BACK) == ["a"]
