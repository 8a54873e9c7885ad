"""The task queue contract: what every queue implementation (engine/queue/protocol.py) must do.

Parametrized over the implementations in conftest.py's ``QUEUE_FACTORIES``. Only the declared
protocols are used (no files, no keys, no private fields): whatever passes this suite can run
galaxy's workers, supervisor, cloud tier and CLI. Time is the fake clock's ``now``, passed in.
"""

from __future__ import annotations

import threading

import pytest

from engine.clock import FakeClock
from engine.model import TaskClass, TaskStatus, TaskType, TaskValidationError
from engine.queue.protocol import Place, Refusal, RigQueue
from engine.scheduling.policy import DEFAULT_AGING_STEP_S
from tests.conformance.queue_contract_helpers import (
    LEASE_S,
    OpenQueue,
    Recording,
    claim,
    drain,
    fail_for_good,
    policy,
    task,
)


# ---------------------------------------------------------------- submit and views
def test_a_submitted_task_waits_in_the_queue(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    assert q.submit([task("a", priority=7)], now) == ["a"]
    got = q.get("a")
    assert got is not None and got.status is TaskStatus.PENDING and got.priority == 7
    assert q.where("a") is Place.QUEUE
    assert q.counts().total(Place.QUEUE) == 1
    assert q.get("nope") is None and q.where("nope") is None


def test_submit_is_all_or_nothing(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a")], now)
    for bad in ([task("b"), task("b")], [task("c"), task("a")], [task("d", depends_on=("ghost",))],
                [task("e", depends_on=("e",))]):
        with pytest.raises(TaskValidationError):
            q.submit(bad, now)
    assert q.counts().total(Place.QUEUE) == 1
    assert all(q.get(i) is None for i in ("b", "c", "d", "e"))


# ---------------------------------------------------------------- ordering and aging
def test_higher_priority_first_then_first_in_first_out(q: RigQueue, clock: FakeClock) -> None:
    for i, prio in enumerate([5, 5, 9, 5, 1]):
        q.submit([task(f"t{i}", priority=prio)], clock.now())
        clock.advance(1.0)
    assert drain(q, clock.now()) == ["t2", "t0", "t1", "t3", "t4"]


def test_aging_lets_an_old_low_priority_task_overtake(q: RigQueue, clock: FakeClock) -> None:
    start = clock.now()
    q.submit([task("old-low", priority=1)], start)
    q.submit([task("new-high", priority=8)], start + 1.0)
    assert claim(q, start + 2.0).task_id == "new-high"  # neither has aged much: priority decides
    q.release("new-high", "w1", start + 3.0, "shutdown")  # back in its place, enqueued at start + 1
    overdue_at = start + (10 - 1) * DEFAULT_AGING_STEP_S  # old-low has gained 9 levels: both are overdue
    assert claim(q, overdue_at).task_id == "old-low"  # and overdue work goes oldest first


def test_a_released_task_keeps_its_place_and_is_not_charged(q: RigQueue, clock: FakeClock) -> None:
    q.submit([task("first")], clock.now())
    clock.advance(1.0)
    q.submit([task("second")], clock.now())
    t = claim(q, clock.now())
    assert t.task_id == "first"
    q.release("first", "w1", clock.now(), "worker stopping")
    back = q.get("first")
    assert back is not None and back.status is TaskStatus.PENDING and back.retry_count == 0
    assert drain(q, clock.now()) == ["first", "second"]


# ---------------------------------------------------------------- lanes and lane heads
def test_claims_are_offered_lane_heads_only(q: RigQueue, clock: FakeClock) -> None:
    for i in range(40):
        q.submit([task(f"cpu-{i:02d}")], clock.now())
        clock.advance(0.001)
    for i in range(25):
        q.submit([task(f"llm-{i:02d}", task_class=TaskClass.LLM, model="m1", type=TaskType.LLM,
                       params={"prompt": "p"})], clock.now())
        clock.advance(0.001)
    q.submit([task("urgent", priority=9)], clock.now())
    rec = Recording(pick="cpu-00")
    got = q.claim("w1", clock.now(), rec, LEASE_S)
    assert got is not None and got.task_id == "cpu-00"
    offered = {c.task_id: c for c in rec.offers[0]}
    assert set(offered) == {"cpu-00", "llm-00", "urgent"}  # one per (class, model, priority) lane
    assert (offered["cpu-00"].lane_depth, offered["llm-00"].lane_depth, offered["urgent"].lane_depth) == (40, 25, 1)
    assert offered["llm-00"].model == "m1" and offered["llm-00"].task_class is TaskClass.LLM
    assert offered["urgent"].priority == 9


def test_the_offer_does_not_grow_with_depth(queue_factory: OpenQueue, clock: FakeClock) -> None:
    q = queue_factory()
    sizes: list[int] = []
    submitted = 0
    for depth in (5, 300):
        for i in range(submitted, depth):
            q.submit([task(f"d{i:03d}")], clock.now())
            clock.advance(0.001)
        submitted = depth
        rec = Recording()
        t = q.claim("w1", clock.now(), rec, LEASE_S)
        assert t is not None
        q.release(t.task_id, "w1", clock.now(), "look only")
        sizes.append(len(rec.offers[0]))
    assert sizes == [1, 1]


def test_a_policy_that_takes_nothing_claims_nothing(q: RigQueue, clock: FakeClock) -> None:
    q.submit([task("a")], clock.now())
    assert q.claim("w1", clock.now(), lambda cands, now: [], LEASE_S) is None
    assert q.where("a") is Place.QUEUE


def test_a_task_is_claimed_by_one_worker_only(queue_factory: OpenQueue, clock: FakeClock) -> None:
    q1, q2 = queue_factory(), queue_factory()
    q1.submit([task("only")], clock.now())
    assert claim(q1, clock.now(), "w1").task_id == "only"
    assert q2.claim("w2", clock.now(), policy("w2"), LEASE_S) is None


def test_claims_lists_the_running_tasks_by_worker(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a"), task("b"), task("c")], now)
    claim(q, now, "w1")
    claim(q, now, "w2")
    assert sorted(c.task_id for c in q.claims()) == ["a", "b"]
    (mine,) = q.claims("w2")
    assert mine.worker_id == "w2" and mine.task_id == "b"
    assert q.claims("w3") == []
    q.complete("a", "w1", {}, now)
    assert [c.task_id for c in q.claims()] == ["b"]


# ---------------------------------------------------------------- leases and heartbeats
def test_a_claim_carries_owner_and_lease(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a")], now)
    t = claim(q, now, "w1", 45.0)
    assert t.status is TaskStatus.PROCESSING and t.lease_owner == "w1"
    assert t.lease_expires == pytest.approx(now + 45.0, abs=0.01)
    assert q.where("a") is Place.PROCESSING
    seen = q.get("a")
    assert seen is not None and seen.status is TaskStatus.PROCESSING and seen.lease_owner == "w1"
    view = q.claim_of("a")
    assert view is not None and view.worker_id == "w1" and view.claimed_at == pytest.approx(now, abs=0.01)
    assert view.lease_expires == pytest.approx(now + 45.0, abs=0.01)
    assert [r.task_id for r in q.recent("processing", 10)] == ["a"]


def test_heartbeats_extend_the_owners_lease_and_are_refused_to_others(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a")], now)
    claim(q, now, "w1")
    assert q.heartbeat("a", "w1", now + 20.0, LEASE_S) is True
    view = q.claim_of("a")
    assert view is not None and view.lease_expires == pytest.approx(now + 20.0 + LEASE_S, abs=0.01)
    assert q.heartbeat("a", "w2", now + 21.0, LEASE_S) is False
    assert q.heartbeat("ghost", "w1", now + 21.0, LEASE_S) is False
    q.complete("a", "w1", {"ok": True}, now + 22.0)
    assert q.heartbeat("a", "w1", now + 23.0, LEASE_S) is False


# ---------------------------------------------------------------- reaping
def test_only_expired_leases_are_reaped(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a"), task("b")], now)
    claim(q, now, "w1")
    claim(q, now, "w2")
    assert q.reap_stale(now + 10.0) == []
    assert q.heartbeat("a", "w1", now + 20.0, LEASE_S)  # a: until now + 50; b: until now + 30
    assert q.reap_stale(now + 40.0) == ["b"]
    back = q.get("b")
    assert back is not None and back.status is TaskStatus.PENDING and back.retry_count == 1
    assert q.where("a") is Place.PROCESSING
    assert q.heartbeat("b", "w2", now + 41.0, LEASE_S) is False  # the stopped worker lost it


def test_a_reaped_owner_cannot_record_over_the_new_owner(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a")], now)
    claim(q, now, "w1")
    assert q.reap_stale(now + LEASE_S + 1) == ["a"]
    assert claim(q, now + LEASE_S + 2, "w2").task_id == "a"
    q.complete("a", "w1", {"who": "w1"}, now + LEASE_S + 3)  # woke up late: not recorded
    q.fail("a", "w1", "late", now + LEASE_S + 3)
    assert q.where("a") is Place.PROCESSING
    q.complete("a", "w2", {"who": "w2"}, now + LEASE_S + 4)
    done = q.get("a")
    assert done is not None and done.status is TaskStatus.COMPLETE and done.result == {"who": "w2"}
    assert q.counts().total(Place.COMPLETE) == 1


def test_a_task_that_keeps_losing_its_worker_fails(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a", max_retries=1)], now)
    for _ in range(2):
        claim(q, now, "w1")
        now += LEASE_S + 1
        assert q.reap_stale(now) == ["a"]
    failed = q.get("a")
    assert failed is not None and failed.status is TaskStatus.FAILED and "lease" in (failed.error or "")


# ---------------------------------------------------------------- backoff and promote_due
def test_a_failed_attempt_waits_out_its_backoff(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a", max_retries=2)], now)
    claim(q, now)
    assert q.next_due() is None
    q.fail("a", "w1", "transient", now)
    waiting = q.get("a")
    assert waiting is not None and waiting.status is TaskStatus.PENDING and waiting.retry_count == 1
    assert q.where("a") is Place.DELAYED
    due = waiting.not_before
    assert due is not None and due > now
    assert q.next_due() == pytest.approx(due, abs=0.01)
    assert q.claim("w1", now, policy(), LEASE_S) is None
    assert q.promote_due(due - 0.5) == []
    assert q.promote_due(due + 0.01) == ["a"]
    assert q.next_due() is None
    again = claim(q, due + 0.02)
    assert again.task_id == "a" and again.retry_count == 1


def test_retries_run_out_then_the_task_fails(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a", max_retries=1)], now)
    claim(q, now)
    q.fail("a", "w1", "transient", now)
    due = q.next_due()
    assert due is not None
    q.promote_due(due + 0.01)
    claim(q, due + 0.01)
    q.fail("a", "w1", "transient again", due + 1.0, return_code=3)
    failed = q.get("a")
    assert failed is not None and failed.status is TaskStatus.FAILED
    assert "transient again" in (failed.error or "") and "gave up" in (failed.error or "")
    assert [a.return_code for a in failed.attempts][-1] == 3
    assert q.counts().total(Place.FAILED) == 1


def test_a_non_retryable_failure_fails_at_once(q: RigQueue, clock: FakeClock) -> None:
    q.submit([task("a", max_retries=5)], clock.now())
    fail_for_good(q, "a", clock.now(), "bad definition")
    failed = q.get("a")
    assert failed is not None and failed.status is TaskStatus.FAILED and q.where("a") is Place.FAILED
    assert "bad definition" in (failed.error or "")


# ---------------------------------------------------------------- dependencies
def test_a_dependent_is_held_until_its_dependency_completes(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a"), task("b", depends_on=("a",))], now)
    held = q.get("b")
    assert held is not None and held.status is TaskStatus.HELD and q.where("b") is Place.HELD
    assert q.counts().total(Place.HELD) == 1
    assert any(w.task_id == "b" and "a" in w.reason for w in q.oldest_waiting(now, 10))
    assert claim(q, now).task_id == "a"
    assert q.claim("w2", now, policy("w2"), LEASE_S) is None  # b is not offered while a runs
    q.complete("a", "w1", {}, now)
    assert q.where("b") is Place.QUEUE
    assert drain(q, now) == ["b"]


def test_a_later_submission_may_depend_on_a_completed_task(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a")], now)
    drain(q, now)
    q.submit([task("b", depends_on=("a",))], now)
    assert q.where("b") is Place.QUEUE


def test_fan_in_is_released_once_after_the_last_parent(queue_factory: OpenQueue, clock: FakeClock) -> None:
    q1, q2 = queue_factory(), queue_factory()
    now = clock.now()
    q1.submit([task("p1"), task("p2"), task("p3"), task("child", depends_on=("p1", "p2", "p3"))], now)
    t1, t2, t3 = claim(q1, now, "w1"), claim(q2, now, "w2"), claim(q1, now, "w3")
    q1.complete(t1.task_id, "w1", {}, now)
    q2.complete(t2.task_id, "w2", {}, now)
    assert q1.where("child") is Place.HELD
    q1.complete(t3.task_id, "w3", {}, now)
    q1.complete(t3.task_id, "w3", {}, now)  # a resent completion releases nothing twice
    assert q1.where("child") is Place.QUEUE
    assert q1.counts().total(Place.QUEUE) == 1
    assert drain(q2, now, "w2") == ["child"]
    assert q1.counts().total(Place.COMPLETE) == 4


def test_a_final_failure_cascades_with_its_root_cause(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a"), task("b", depends_on=("a",)), task("c", depends_on=("b",)), task("x")], now)
    t = q.claim("w1", now, Recording(pick="a"), LEASE_S)
    assert t is not None
    q.fail("a", "w1", "disk on fire", now, retryable=False)
    for dependent in ("b", "c"):
        failed = q.get(dependent)
        assert failed is not None and failed.status is TaskStatus.FAILED
        assert "dependency a failed" in (failed.error or "") and "disk on fire" in (failed.error or "")
        assert (failed.result or {}).get("cascade_root") == "a"
    assert q.where("x") is Place.QUEUE  # unrelated work goes on
    assert q.counts().total(Place.FAILED) == 3


def test_retrying_the_root_brings_its_cascade_back(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a"), task("b", depends_on=("a",)), task("c", depends_on=("b",))], now)
    fail_for_good(q, "a", now)
    assert q.retry("a", now + 1)
    fresh = q.get("a")
    assert fresh is not None and fresh.status is TaskStatus.PENDING and fresh.retry_count == 0
    assert q.where("b") is Place.HELD and q.where("c") is Place.HELD
    assert q.counts().total(Place.FAILED) == 0
    assert drain(q, now + 2) == ["a", "b", "c"]


# ---------------------------------------------------------------- retry and cancel
def test_retry_refusals_say_why(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a"), task("b", depends_on=("a",)), task("waiting")], now)
    fail_for_good(q, "a", now)
    for task_id, refusal in (("ghost", Refusal.NOT_FOUND), ("waiting", Refusal.NOT_FOUND),
                             ("b", Refusal.DEPENDENCY_FAILED), ("../etc/passwd", Refusal.INVALID_ID)):
        verdict = q.retry(task_id, now)
        assert not verdict and verdict.refusal is refusal, task_id
        assert verdict.message, task_id
    assert "a" in q.retry("b", now).message  # names the dependency to retry instead


def test_retry_all_failed_brings_back_every_root(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a"), task("b")], now)
    fail_for_good(q, "a", now)
    fail_for_good(q, "b", now)
    assert sorted(q.retry_all_failed(now + 1)) == ["a", "b"]
    assert q.counts().total(Place.FAILED) == 0 and q.counts().total(Place.QUEUE) == 2


def test_cancel_a_waiting_task_and_its_dependents(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a"), task("b", depends_on=("a",))], now)
    assert q.cancel("a", now, "not needed")
    a, b = q.get("a"), q.get("b")
    assert a is not None and a.status is TaskStatus.FAILED and "cancelled: not needed" in (a.error or "")
    assert b is not None and b.status is TaskStatus.FAILED and (b.result or {}).get("cascade_root") == "a"
    assert q.claim("w1", now, policy(), LEASE_S) is None


def test_cancel_a_running_task_takes_it_from_its_worker(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a")], now)
    claim(q, now, "w1")
    assert q.cancel("a", now + 1, "operator")
    assert q.heartbeat("a", "w1", now + 2, LEASE_S) is False
    q.complete("a", "w1", {"late": True}, now + 3)  # the worker finished anyway: not recorded
    failed = q.get("a")
    assert failed is not None and failed.status is TaskStatus.FAILED
    assert q.counts().total(Place.COMPLETE) == 0


def test_cancel_refuses_what_is_finished_or_unknown(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a")], now)
    drain(q, now)
    for task_id, refusal in (("a", Refusal.NOT_FOUND), ("ghost", Refusal.NOT_FOUND),
                             ("../x", Refusal.INVALID_ID)):
        verdict = q.cancel(task_id, now, "x")
        assert not verdict and verdict.refusal is refusal and verdict.message, task_id


def test_cancel_reaches_held_and_delayed_tasks_and_retry_undoes_it(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a", max_retries=3), task("b", depends_on=("a",))], now)
    claim(q, now)
    q.fail("a", "w1", "transient", now)
    assert q.where("a") is Place.DELAYED and q.where("b") is Place.HELD
    assert q.cancel("b", now, "not needed") and q.where("b") is Place.FAILED
    assert q.cancel("a", now, "not needed") and q.where("a") is Place.FAILED
    assert q.next_due() is None and q.promote_due(now + 10_000) == []
    assert q.retry("a", now + 1) and q.where("a") is Place.QUEUE
    assert q.retry("b", now + 1) and q.where("b") is Place.HELD
    assert drain(q, now + 2) == ["a", "b"]


def test_only_the_owner_can_release(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a")], now)
    claim(q, now, "w1")
    q.release("a", "w2", now, "not mine")
    assert q.where("a") is Place.PROCESSING
    q.release("a", "w1", now, "stopping")
    assert q.where("a") is Place.QUEUE and q.heartbeat("a", "w1", now, LEASE_S) is False


# ---------------------------------------------------------------- completion recorded once
def test_completion_is_recorded_once(queue_factory: OpenQueue, clock: FakeClock) -> None:
    q1, q2 = queue_factory(), queue_factory()
    now = clock.now()
    q1.submit([task("a", task_class=TaskClass.SCRIPT)], now)
    claim(q1, now)
    q1.complete("a", "w1", {"n": 1}, now + 1)
    q1.complete("a", "w1", {"n": 2}, now + 2)  # a resent command after a lost reply
    q2.complete("a", "w1", {"n": 3}, now + 3)  # from another handle (the worker reconnected)
    done = q2.get("a")
    assert done is not None and done.status is TaskStatus.COMPLETE and done.result == {"n": 1}
    assert q2.counts().by_state.get(Place.COMPLETE, {}) == {"script": 1}
    assert [t.task_id for t in q2.recent("complete", 10)] == ["a"]
    assert q2.where("a") is Place.COMPLETE and q2.claim_of("a") is None


def test_resolve_completes_a_failed_task_once(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a"), task("b", depends_on=("a",))], now)
    fail_for_good(q, "a", now)
    assert q.resolve_failed("a", {"text": "answer"}, now + 1)
    done = q.get("a")
    assert done is not None and done.status is TaskStatus.COMPLETE and done.result == {"text": "answer"}
    again = q.resolve_failed("a", {"text": "other"}, now + 2)
    assert not again and again.refusal is Refusal.ALREADY_COMPLETE
    assert q.where("b") is Place.QUEUE  # its cascade came back, its dependency is complete
    assert q.counts().total(Place.COMPLETE) == 1 and q.counts().total(Place.FAILED) == 0
    missing = q.resolve_failed("ghost", {}, now)
    assert not missing and missing.refusal is Refusal.NOT_FOUND


def test_concurrent_workers_run_each_task_once(queue_factory: OpenQueue, clock: FakeClock) -> None:
    """Four workers, each on its own handle (as separate processes are), drain 30 parents and 10
    fan-in children at once: nothing lost, nothing run or recorded twice, every child released once."""
    now = clock.now()
    parents = [task(f"p{i:02d}", priority=i % 3 + 4) for i in range(30)]
    children = [task(f"c{i}", depends_on=tuple(f"p{j:02d}" for j in range(i, 30, 10))) for i in range(10)]
    queue_factory().submit(parents + children, now)
    ran: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(worker_id: str) -> None:
        wq = queue_factory()
        try:
            idle_rounds = 0
            while idle_rounds < 3:  # children appear only after their last parent: look again a few times
                t = wq.claim(worker_id, now, policy(worker_id), LEASE_S)
                if t is None:
                    idle_rounds += 1
                    wq.wait_for_change(0.05)
                    continue
                idle_rounds = 0
                with lock:
                    ran.append(t.task_id)
                wq.complete(t.task_id, worker_id, {"by": worker_id}, now)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    late = drain(queue_factory(), now, "w9")  # whatever the workers stopped looking for too early
    ran.extend(late)
    assert sorted(ran) == sorted(t.task_id for t in parents + children)
    counts = queue_factory().counts()
    assert counts.total(Place.COMPLETE) == 40
    assert counts.total(Place.QUEUE) == counts.total(Place.HELD) == counts.total(Place.PROCESSING) == 0


# ---------------------------------------------------------------- counts and recent
def test_counts_by_state_and_class(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("c1"), task("c2"), task("s1", task_class=TaskClass.SCRIPT),
              task("h1", depends_on=("c1",))], now)
    counts = q.counts()
    assert counts.by_state[Place.QUEUE] == {"cpu": 2, "script": 1}
    assert counts.by_state[Place.HELD] == {"cpu": 1}
    t = q.claim("w1", now, Recording(pick="s1"), LEASE_S)
    assert t is not None
    assert q.counts().by_state[Place.PROCESSING] == {"script": 1}


def test_recent_is_newest_first_and_limited(q: RigQueue, clock: FakeClock) -> None:
    for i in range(4):
        q.submit([task(f"t{i}")], clock.now())
        clock.advance(1.0)
    for i in range(4):
        t = q.claim("w1", clock.now(), Recording(pick=f"t{i}"), LEASE_S)
        assert t is not None
        q.complete(t.task_id, "w1", {}, clock.now())
        clock.advance(1.0)
    assert [t.task_id for t in q.recent("complete", 3)] == ["t3", "t2", "t1"]
    assert q.recent("failed", 3) == []
    q.submit([task("f1"), task("f2")], clock.now())
    fail_for_good(q, "f1", clock.now())
    clock.advance(1.0)
    fail_for_good(q, "f2", clock.now())
    assert [t.task_id for t in q.recent("failed", 5)] == ["f2", "f1"]


def test_oldest_waiting_says_why_each_task_waits(q: RigQueue, clock: FakeClock) -> None:
    now = clock.now()
    q.submit([task("a", max_retries=2), task("b", depends_on=("a",)), task("c")], now)
    t = q.claim("w1", now, Recording(pick="a"), LEASE_S)
    assert t is not None
    q.fail("a", "w1", "transient", now)
    reasons = {w.task_id: w.reason for w in q.oldest_waiting(now + 1, 10)}
    assert set(reasons) == {"a", "b", "c"}
    assert "backoff" in reasons["a"] and "a" in reasons["b"] and reasons["c"]
    assert len(q.oldest_waiting(now + 1, 2)) == 2


def test_failed_stamp_moves_when_tasks_fail(q: RigQueue, clock: FakeClock) -> None:
    before = q.failed_stamp()
    q.submit([task("a")], clock.now())
    fail_for_good(q, "a", clock.now())
    after = q.failed_stamp()
    assert after is None or after != before
