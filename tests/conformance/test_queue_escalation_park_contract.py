"""The task queue contract, part four: a task that fails for good and qualifies for escalation waits
for an operator from its failure on (``TaskQueue.fail(escalate=...)``): awaiting approval with no
escalation yet, never failed (not counted, no failure event, its dependents held), until the cloud
tier ``attach``es the escalation it raised. Parametrized over conftest.py's ``QUEUE_FACTORIES``.
"""

from __future__ import annotations

from pathlib import Path

from engine.clock import FakeClock
from engine.events import tail_events
from engine.model import Task, TaskStatus
from engine.paths import RigPaths
from engine.queue.protocol import Place, Refusal, RigQueue
from tests.conformance.queue_contract_helpers import claim, task


def asks(task: Task) -> str | None:
    """The rule a worker is given: here every task that failed for good with "needs cloud" qualifies."""
    return "failed locally: a bigger model may do" if "needs cloud" in (task.error or "") else None


def never_asked(task: Task) -> str | None:
    raise AssertionError(f"the rule is for a task that failed for good, not {task.task_id} with retries left")


def test_a_task_that_qualifies_waits_from_its_failure_on(q: RigQueue, clock: FakeClock, tmp_path: Path) -> None:
    now = clock.now()
    q.submit([task("ask"), task("after", depends_on=("ask",))], now)
    assert claim(q, now).task_id == "ask"
    q.fail("ask", "w1", "exit 3: needs cloud", now + 1, retryable=False, escalate=asks)
    assert q.where("ask") is Place.AWAITING and q.where("after") is Place.HELD
    assert q.counts().total(Place.FAILED) == 0 and q.awaiting.counts() == {"cpu": 1}
    assert q.recent("failed", 10) == []
    parked = q.awaiting.get("ask")
    assert parked is not None and parked.status is TaskStatus.AWAITING_APPROVAL
    assert (parked.result or {}).get("awaiting_escalation") == ""  # none raised yet
    assert "needs cloud" in (parked.error or "") and [a.outcome for a in parked.attempts] == ["error"]
    kinds = [e.get("event_type") for e in tail_events(RigPaths(tmp_path / "store").events, 50)
             if e.get("task_id") == "ask"]
    assert "task_awaiting_approval" in kinds and "task_failed" not in kinds
    retried = q.retry("ask", now + 2)
    assert not retried and retried.refusal is Refusal.AWAITING_APPROVAL


def parked_by_its_worker(q: RigQueue, now: float) -> None:
    """"ask" (with "after" depending on it) failed for good and qualified: awaiting, none raised yet."""
    q.submit([task("ask"), task("after", depends_on=("ask",))], now)
    assert claim(q, now).task_id == "ask"
    q.fail("ask", "w1", "needs cloud", now + 1, retryable=False, escalate=asks)


def test_the_escalation_is_attached_once_then_decides_as_a_parked_ones(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    parked_by_its_worker(q, now)
    assert q.awaiting.attach("ask", "esc-1", now + 2)
    assert q.awaiting.attach("ask", "esc-1", now + 3)  # the same again: nothing changes
    other = q.awaiting.attach("ask", "esc-2", now + 3)
    assert not other and "esc-1" in other.message
    parked = q.awaiting.get("ask")
    assert parked is not None and (parked.result or {}).get("awaiting_escalation") == "esc-1"
    assert "esc-1" in (q.awaiting.refusal("ask") or "")
    assert not q.awaiting.attach("after", "esc-3", now + 3) and not q.awaiting.attach("../x", "esc-3", now + 3)
    assert q.awaiting.fail("ask", "escalation denied by op: no", now + 4)
    assert q.where("ask") is Place.FAILED and q.where("after") is Place.FAILED  # the cascade, at the deny


def test_an_answer_completes_it_and_releases_its_dependents(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    parked_by_its_worker(q, now)
    assert q.awaiting.attach("ask", "esc-1", now + 2)
    assert q.awaiting.resolve("ask", {"text": "cloud answer"}, now + 3)
    assert q.where("ask") is Place.COMPLETE and q.where("after") is Place.QUEUE


def test_a_failure_the_rule_passes_over_is_a_failure(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("plain")], now)
    assert claim(q, now).task_id == "plain"
    q.fail("plain", "w1", "exit 1", now + 1, retryable=False, escalate=asks)
    assert q.where("plain") is Place.FAILED and q.awaiting.counts() == {}
    q.submit([task("again", max_retries=1)], now + 2)
    assert claim(q, now + 2).task_id == "again"
    q.fail("again", "w1", "needs cloud", now + 2, escalate=never_asked)  # a retry is left: backoff, as always
    assert q.where("again") is Place.DELAYED
