"""The restore contract (``TaskLister.restore``, engine/queue/restoring.py), for both stores: a task
moved from another store lands where its record says, keeps what it carried, and behaves there like
a task that lived its whole life in this store; a bad batch writes nothing."""

from __future__ import annotations

import pytest

from engine.clock import FakeClock
from engine.model import Attempt, TaskStatus, TaskValidationError
from engine.queue.protocol import Place, RigQueue
from tests.conformance.queue_contract_helpers import OpenQueue, claim, drain, task


def _moved(now: float) -> list:  # type: ignore[type-arg]
    tried = (Attempt(number=1, worker_id="old-w", started_at=now - 90, ended_at=now - 80, outcome="error",
                     error="exit code 3"),)
    return [
        task("kid", depends_on=("parent", "w")),  # held on a restored parent (met) and a waiting task
        task("w", priority=7),
        task("later", status=TaskStatus.PENDING, retry_count=2, not_before=now + 60, attempts=tried,
             error="exit code 3"),
        task("bad", status=TaskStatus.FAILED, retry_count=1, attempts=tried, error="exit code 3 (gave up)"),
        task("parent", status=TaskStatus.COMPLETE, result={"answer": 42}, attempts=tried),
    ]


def test_each_task_lands_where_its_record_says_and_keeps_what_it_carried(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    assert sorted(q.restore(_moved(now), now)) == ["bad", "kid", "later", "parent", "w"]
    assert {i: q.where(i) for i in ("kid", "w", "later", "bad", "parent")} == {
        "kid": Place.HELD, "w": Place.QUEUE, "later": Place.DELAYED, "bad": Place.FAILED, "parent": Place.COMPLETE}
    parent, bad, later = q.get("parent"), q.get("bad"), q.get("later")
    assert parent is not None and parent.result == {"answer": 42} and len(parent.attempts) == 1
    assert bad is not None and bad.error == "exit code 3 (gave up)" and bad.retry_count == 1
    assert bad.attempts[0].worker_id == "old-w"
    assert later is not None and later.retry_count == 2 and later.not_before == pytest.approx(now + 60, abs=0.01)
    assert q.next_due() == pytest.approx(now + 60, abs=0.01)
    counts = q.counts()
    assert (counts.total(Place.FAILED), counts.total(Place.COMPLETE), counts.total(Place.QUEUE)) == (1, 1, 1)
    assert [t.task_id for t in q.recent("failed", 5)] == ["bad"]


def test_restored_tasks_run_on_as_if_they_had_always_been_here(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.restore(_moved(now), now)
    assert drain(q, now) == ["w", "kid"]  # kid waited on w only: its parent came complete
    assert q.promote_due(now + 59) == []
    assert q.promote_due(now + 61) == ["later"]
    assert claim(q, now + 61).task_id == "later"
    assert q.retry("bad", now + 62)
    assert q.where("bad") is Place.QUEUE
    q.submit([task("grandkid", depends_on=("parent",))], now + 63)  # a restored parent is a known, met one
    assert q.where("grandkid") is Place.QUEUE


def test_a_held_task_restored_on_a_failed_parent_fails_in_cascade(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.restore([task("bad", status=TaskStatus.FAILED, error="boom"), task("kid", depends_on=("bad",))], now)
    kid = q.get("kid")
    assert kid is not None and kid.status is TaskStatus.FAILED and "bad" in (kid.error or "")


def test_a_bad_batch_writes_nothing(queue_factory: OpenQueue, clock: FakeClock) -> None:
    q = queue_factory()
    now = clock.now()
    q.submit([task("here")], now)
    for bad in ([task("a"), task("here")],  # an id the store knows
                [task("a"), task("a")],
                [task("a", depends_on=("ghost",))],
                [task("a"), task("run", status=TaskStatus.PROCESSING, lease_owner="w9", lease_expires=now + 30)],
                [task("a"), task("parked", status=TaskStatus.AWAITING_APPROVAL)]):
        with pytest.raises(TaskValidationError):
            q.restore(bad, now)
    other = queue_factory()  # what another process sees
    assert all(other.where(i) is None for i in ("a", "ghost", "run", "parked"))
    assert other.counts().total(Place.QUEUE) == 1 and other.counts().total(Place.FAILED) == 0
    assert q.restore([], now) == []
