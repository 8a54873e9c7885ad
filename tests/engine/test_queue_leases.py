"""Leases, reaping, retries with backoff and jitter, hand-back: all on an injected clock."""

from __future__ import annotations

import os
import random

import pytest
from queue_helpers import T0, events_of, make_queue, policy, task

from engine.model import TaskStatus


def test_lease_expiry_returns_task_with_retry_counted(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("job")], T0)
    q.claim("dead", T0, policy("dead"), 30.0)
    assert q.reap_stale(T0 + 29) == []
    assert q.reap_stale(T0 + 31) == ["job"]
    back = q.get("job")
    assert back.status is TaskStatus.PENDING and back.retry_count == 1
    assert back.attempts[-1].outcome == "lost" and back.attempts[-1].worker_id == "dead"
    t = q.claim("alive", T0 + 32, policy("alive"), 30.0)
    q.complete(t.task_id, "alive", {}, T0 + 33)
    done = q.get("job")
    assert done.retry_count == 1 and [a.outcome for a in done.attempts] == ["lost", "ok"]
    assert len(events_of(tmp_path, "task_lost")) == 1


def test_heartbeat_extends_the_lease(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("job")], T0)
    q.claim("w1", T0, policy(), 30.0)
    assert q.heartbeat("job", "w1", T0 + 25, 30.0)
    assert q.reap_stale(T0 + 40) == []  # expires at T0 + 55 now
    assert q.reap_stale(T0 + 56) == ["job"]
    assert not q.heartbeat("job", "w1", T0 + 57, 30.0)  # it is no longer ours


def test_heartbeat_of_another_worker_is_refused(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("job")], T0)
    q.claim("w1", T0, policy(), 30.0)
    assert not make_queue(tmp_path).heartbeat("job", "w2", T0 + 1, 30.0)


def test_reaped_too_often_goes_to_failed(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("flaky", max_retries=1)], T0)
    q.claim("a", T0, policy("a"), 10.0)
    q.reap_stale(T0 + 11)
    q.claim("b", T0 + 12, policy("b"), 10.0)
    q.reap_stale(T0 + 23)
    failed = q.get("flaky")
    assert failed.status is TaskStatus.FAILED
    assert "lease expired 2 times" in failed.error
    assert q.counts().by_state["failed"] == {"cpu": 1}


def test_late_completion_after_reap_is_logged_not_counted(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("slow")], T0)
    q.claim("a", T0, policy("a"), 10.0)
    q.reap_stale(T0 + 11)
    t = q.claim("b", T0 + 12, policy("b"), 10.0)
    q.complete("slow", "a", {"by": "a"}, T0 + 13)  # the reaped worker finishes late
    q.complete(t.task_id, "b", {"by": "b"}, T0 + 14)
    assert q.get("slow").result == {"by": "b"}
    assert q.counts().by_state["complete"] == {"cpu": 1}
    late = events_of(tmp_path, "late_result_discarded")
    assert len(late) == 1 and late[0]["worker_id"] == "a"


def test_late_completion_while_task_waits_again_counts_once_and_is_not_rerun(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("late")], T0)
    q.claim("a", T0, policy("a"), 10.0)
    assert q.reap_stale(T0 + 11) == ["late"]
    q.complete("late", "a", {"by": "a"}, T0 + 12)  # nobody had taken it again yet
    done = q.get("late")
    assert done.status is TaskStatus.COMPLETE and done.result == {"by": "a"} and done.retry_count == 1
    assert [(x.worker_id, x.outcome) for x in done.attempts] == [("a", "lost"), ("a", "ok")]
    assert q.claim("b", T0 + 13, policy("b"), 10.0) is None  # it does not run again
    assert q.counts().by_state["complete"] == {"cpu": 1}


def test_backoff_is_exponential_with_seeded_jitter(tmp_path):
    q = make_queue(tmp_path, rng=random.Random(1), backoff_base_s=10, backoff_cap_s=35)
    expected_rng = random.Random(1)
    q.submit([task("retry-me", max_retries=3)], T0)
    now = T0
    dues = []
    for n in (1, 2, 3):
        t = q.claim("w1", now, policy(), 30)
        assert t is not None and t.retry_count == n - 1
        q.fail(t.task_id, "w1", "exit code 1: boom", now, return_code=1)
        delay = min(35, 10 * 2 ** (n - 1)) * (0.5 + expected_rng.random())
        dues.append(delay)
        waiting = q.get("retry-me")
        assert waiting.not_before == pytest.approx(now + delay, abs=1e-3)
        assert q.claim("w1", now + delay - 0.01, policy(), 30) is None
        assert q.promote_due(now + delay - 0.01) == []
        assert q.next_due() == pytest.approx(now + delay, abs=1e-3)
        now += delay
        assert q.promote_due(now) == ["retry-me"]
    t = q.claim("w1", now, policy(), 30)
    q.fail(t.task_id, "w1", "exit code 1: boom", now, return_code=1)
    final = q.get("retry-me")
    assert final.status is TaskStatus.FAILED and "gave up after 4 attempts" in final.error
    assert [a.return_code for a in final.attempts] == [1, 1, 1, 1]
    assert 5 <= dues[0] < 15 and 10 <= dues[1] < 30 and 17.5 <= dues[2] < 52.5


def test_definition_error_is_not_retried(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("bad", max_retries=5)], T0)
    q.claim("w1", T0, policy(), 30)
    q.fail("bad", "w1", "no handler for type llm on this worker", T0, retryable=False)
    failed = q.get("bad")
    assert failed.status is TaskStatus.FAILED and failed.retry_count == 0
    assert failed.error == "no handler for type llm on this worker"


def test_release_hands_back_without_charging_a_retry(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("first"), task("second")], T0)
    t = q.claim("w1", T0 + 1, policy(), 30)
    assert t.task_id == "first"
    q.release("first", "w1", T0 + 2, "worker stopping (SIGTERM)")
    back = q.get("first")
    assert back.status is TaskStatus.PENDING and back.retry_count == 0
    assert back.attempts[-1].outcome == "released"
    assert q.claim("w2", T0 + 3, policy("w2"), 30).task_id == "first"  # keeps its place in line


def test_cancel_running_task_makes_heartbeat_fail(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("run")], T0)
    q.claim("w1", T0, policy(), 30)
    assert make_queue(tmp_path).cancel("run", T0 + 1, "operator said so")
    assert not q.heartbeat("run", "w1", T0 + 2, 30)
    q.complete("run", "w1", {}, T0 + 3)
    got = q.get("run")
    assert got.status is TaskStatus.FAILED and got.error == "cancelled: operator said so"


def test_orphan_of_a_crash_mid_move_is_recovered(tmp_path):
    q = make_queue(tmp_path, orphan_age_s=0.0)
    q.submit([task("orph"), task("done")], T0)
    for _ in range(2):
        t = q.claim("w1", T0, policy(), 30)
        [name] = [n for n in os.listdir(q.paths.processing) if n.startswith(t.task_id + "+")]
        os.rename(q.paths.processing / name, q.tmp / f"{name}.finishing")  # died right after grabbing it
    (q.paths.complete / "done.json").write_text("{}")  # "done" had got as far as its completion
    assert q.inspector.recover_orphans(T0 + 10) == []  # leases still run: the owner may be alive
    assert q.reap_stale(T0 + 100) == ["orph"]  # nothing left in processing/; the janitor runs with it
    assert q.get("orph").status is TaskStatus.PENDING
    assert not [n for n in os.listdir(q.tmp) if n.endswith(".finishing")]
