"""The task queue contract, part two: awaiting approval, waking an idle worker, listing a place.

Same rules as test_task_queue_contract.py: parametrized over conftest.py's ``QUEUE_FACTORIES``,
only the declared protocols, time as the fake clock's ``now``.
"""

from __future__ import annotations

import os
import threading

import pytest

from engine.clock import FakeClock
from engine.model import TaskClass, TaskStatus
from engine.queue.protocol import Place, Refusal, RigQueue
from tests.conformance.queue_contract_helpers import (
    LEASE_S,
    OpenQueue,
    Recording,
    fail_for_good,
    policy,
    task,
)


# ---------------------------------------------------------------- awaiting approval
def test_a_parked_task_waits_for_its_escalation(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("ask"), task("after", depends_on=("ask",))], now)
    fail_for_good(q, "ask", now)
    assert q.awaiting.park("ask", "esc-1", now + 1)
    assert q.where("ask") is Place.AWAITING and q.counts().total(Place.FAILED) == 0
    parked = q.awaiting.get("ask")
    assert parked is not None and parked.status is TaskStatus.AWAITING_APPROVAL
    assert (parked.result or {}).get("awaiting_escalation") == "esc-1"
    assert [t.task_id for t in q.awaiting.tasks()] == ["ask"] and q.awaiting.counts() == {"cpu": 1}
    assert q.where("after") is Place.HELD
    for verdict in (q.retry("ask", now + 2), q.cancel("ask", now + 2, "x")):
        assert not verdict and verdict.refusal is Refusal.AWAITING_APPROVAL and "esc" in verdict.message
    assert q.awaiting.refusal("ask") is not None and q.awaiting.refusal("after") is None
    assert q.awaiting.resolve("ask", {"text": "cloud answer"}, now + 3)
    assert q.where("ask") is Place.COMPLETE and q.where("after") is Place.QUEUE


def test_a_denied_escalation_fails_the_task_and_its_dependents(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("ask"), task("after", depends_on=("ask",))], now)
    fail_for_good(q, "ask", now)
    assert q.awaiting.park("ask", "esc-1", now + 1)
    assert q.awaiting.fail("ask", "escalation denied by op: too dear", now + 2)
    failed = q.get("ask")
    assert failed is not None and failed.status is TaskStatus.FAILED and "too dear" in (failed.error or "")
    assert q.where("after") is Place.FAILED
    assert not q.awaiting.fail("ask", "again", now + 3)
    assert q.retry("ask", now + 4)  # a denied task runs locally again on retry


def test_an_expired_escalation_may_go_back_to_the_queue(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("ask", max_retries=0)], now)
    fail_for_good(q, "ask", now)
    assert q.awaiting.park("ask", "esc-1", now + 1)
    assert q.awaiting.retry_local("ask", now + 2)
    back = q.get("ask")
    assert back is not None and back.status is TaskStatus.PENDING and back.retry_count == 0
    assert not q.awaiting.park("nope", "esc-2", now) and not q.awaiting.park("../x", "esc-2", now)


# ---------------------------------------------------------------- waking an idle worker
def _settle(q: RigQueue) -> None:
    """Swallow the changes this test made itself before it starts to wait."""
    for _ in range(100):
        if not q.wait_for_change(0.05):
            return


def test_an_idle_worker_is_woken_by_a_submit_elsewhere(queue_factory: OpenQueue, clock: FakeClock) -> None:
    idle, other = queue_factory(), queue_factory()
    if not idle.wakes_on_change():
        pytest.skip("this platform gives the queue no change notifications (the worker polls)")
    _settle(idle)
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(idle.wait_for_change(60.0)))
    waiter.start()
    n = 0
    while waiter.is_alive() and n < 200:  # keep submitting until it wakes: no guess at when it started waiting
        other.submit([task(f"new-{n}")], clock.now())
        n += 1
        waiter.join(0.1)
    waiter.join()
    assert result == [True]  # woken by the change, not by the 60 s timeout
    assert idle.claim("w1", clock.now(), policy(), LEASE_S) is not None


def test_the_wake_pipe_wakes_a_waiting_worker(q: RigQueue) -> None:
    _settle(q)
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        assert q.wait_for_change(60.0, wake_fd=r) is True
    finally:
        os.close(r)
        os.close(w)


def test_nothing_changes_nothing_wakes(q: RigQueue) -> None:
    _settle(q)
    assert q.wait_for_change(0.2) is False
    assert q.next_due() is None


# ---------------------------------------------------------------- listing a place (galaxy store migrate)
def test_ids_in_lists_every_task_of_a_place(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("run", priority=9), task("later", max_retries=2, priority=8), task("bad", priority=7),
              task("parked", priority=6), task("w1", priority=1),
              task("w2", task_class=TaskClass.LLM, model="m"), task("kid", depends_on=("w1",))], now)
    for tid in ("run", "later", "bad", "parked"):  # each its own lane: the Recording policy sees it
        got = q.claim("w1", now, Recording(pick=tid), LEASE_S)
        assert got is not None and got.task_id == tid
    q.fail("later", "w1", "transient", now)
    q.fail("bad", "w1", "boom", now, retryable=False)
    q.fail("parked", "w1", "boom", now, retryable=False)
    assert q.awaiting.park("parked", "esc-1", now)
    assert sorted(q.ids_in(Place.QUEUE)) == ["w1", "w2"]  # every lane
    assert q.ids_in(Place.HELD) == ["kid"]
    assert q.ids_in(Place.DELAYED) == ["later"]
    assert q.ids_in(Place.PROCESSING) == ["run"]
    assert q.ids_in(Place.FAILED) == ["bad"]
    assert q.ids_in(Place.AWAITING) == ["parked"]
    with pytest.raises(ValueError, match="complete"):
        q.ids_in(Place.COMPLETE)


def test_a_forgotten_failed_task_is_unknown_and_uncounted(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("bad", priority=9), task("kid", depends_on=("bad",)), task("wait")], now)
    fail_for_good(q, "bad", now)
    assert q.where("kid") is Place.FAILED  # in cascade
    assert q.forget_failed("kid", now)
    assert q.forget_failed("bad", now)
    assert q.where("bad") is None and q.get("bad") is None and q.where("kid") is None
    assert q.counts().total(Place.FAILED) == 0
    assert q.ids_in(Place.FAILED) == [] and q.recent("failed", 10) == []
    refused = q.forget_failed("wait", now)
    assert not refused and refused.refusal is Refusal.NOT_FOUND and "wait" in refused.message
    assert q.where("wait") is Place.QUEUE
    q.submit([task("bad")], now)  # the id is free again
    assert q.where("bad") is Place.QUEUE
