"""Held tasks: release on completion, cascade failure naming the root cause, retry brings them back."""

from __future__ import annotations

import os

from queue_helpers import T0, drain_ids, events_of, make_queue, policy, task

from engine.model import TaskStatus


def _fail_now(q, task_id, error="exit code 2: disk full"):
    t = q.claim("w1", T0, policy(), 30)
    assert t.task_id == task_id
    q.fail(task_id, "w1", error, T0, retryable=False)


def test_dependents_wait_then_release_in_order(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("init"), task("a", depends_on=("init",)), task("b", depends_on=("init",)),
              task("join", depends_on=("a", "b"))], T0)
    assert q.get("a").status is TaskStatus.HELD
    assert os.listdir(q.paths.held / "_deps" / "init") != []
    assert drain_ids(q, T0) == ["init", "a", "b", "join"]
    assert not os.listdir(q.paths.held / "_deps")  # reverse index cleaned up
    assert len(events_of(tmp_path, "task_released")) == 3


def test_dependency_already_complete_at_submit_releases_at_once(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("first")], T0)
    drain_ids(q, T0)
    q.submit([task("later", depends_on=("first",))], T0 + 1)
    assert q.get("later").status is TaskStatus.PENDING


def test_failure_cascades_transitively_with_root_cause(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("t3"), task("t4", depends_on=("t3",)), task("t5", depends_on=("t4",)), task("free")], T0)
    t = q.claim("w1", T0, policy(), 30)
    if t.task_id == "free":
        q.complete("free", "w1", {}, T0)
        t = q.claim("w1", T0, policy(), 30)
    q.fail("t3", "w1", "exit code 2: disk full", T0, retryable=False)
    t4, t5 = q.get("t4"), q.get("t5")
    assert t4.status is TaskStatus.FAILED and t4.error == "dependency t3 failed: exit code 2: disk full"
    assert t5.status is TaskStatus.FAILED and t5.error == "dependency t3 failed (via t4): exit code 2: disk full"
    assert q.counts().by_state["failed"] == {"cpu": 3}
    assert q.counts().by_state["held"] == {}


def test_submit_after_dependency_failed_fails_at_once(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("root")], T0)
    _fail_now(q, "root")
    q.submit([task("late", depends_on=("root",))], T0 + 1)
    assert q.get("late").error == "dependency root failed: exit code 2: disk full"


def test_retry_root_brings_back_the_dependents_it_took_down(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("root"), task("kid", depends_on=("root",)), task("grandkid", depends_on=("kid",))], T0)
    _fail_now(q, "root")
    assert q.get("grandkid").status is TaskStatus.FAILED
    assert not make_queue(tmp_path).retry("kid", T0 + 1)  # its dependency is still failed
    assert q.retry("root", T0 + 1)
    assert q.get("root").status is TaskStatus.PENDING
    assert q.get("kid").status is TaskStatus.HELD and q.get("grandkid").status is TaskStatus.HELD
    assert q.counts().by_state["failed"] == {}
    assert drain_ids(q, T0 + 2) == ["root", "kid", "grandkid"]


def test_retry_all_failed_and_cancel_cascade(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("c1"), task("c2", depends_on=("c1",)), task("x")], T0)
    assert q.cancel("c1", T0, "not needed")
    assert q.get("c2").error == "dependency c1 failed: cancelled: not needed"
    assert not q.cancel("c1", T0, "again")
    assert q.retry_all_failed(T0 + 1) == ["c1"]  # c2 came back with its root, not on its own
    assert sorted(drain_ids(q, T0 + 2)) == ["c1", "c2", "x"]
    assert len(events_of(tmp_path, "task_cancelled")) == 1


def test_cancel_held_and_delayed_tasks(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("a"), task("h", depends_on=("a",))], T0)
    assert q.cancel("h", T0, "changed my mind")
    t = q.claim("w1", T0, policy(), 30)
    q.fail(t.task_id, "w1", "boom", T0)  # retryable: goes to delayed/
    assert os.listdir(q.paths.delayed)
    assert q.cancel("a", T0, "stop retrying")
    assert q.get("a").status is TaskStatus.FAILED and not os.listdir(q.paths.delayed)
    assert q.get("h").error == "cancelled: changed my mind"


def test_a_release_cut_short_by_a_crash_does_not_queue_the_task_twice(tmp_path):
    """Releasing writes queue/ first and removes the held file second; a crash in between
    leaves both. The next settle must see the queued copy and only drop the held file."""
    q = make_queue(tmp_path)
    q.submit([task("dep"), task("child", depends_on=("dep",))], T0)
    held_name = q.deps.find_held("child")
    assert q.claim("w1", T0, policy(), 30).task_id == "dep"
    q.write_queued(q.get("child"), T0)  # the first half of a release, then the crash
    q.complete("dep", "w1", {}, T0 + 5)  # settles "child" again, later: another queue name
    assert not (q.paths.held / held_name).exists()
    queued = [n for n in os.listdir(q.paths.queue) if n.endswith("+child.json")]
    assert len(queued) == 1, queued
    assert drain_ids(q, T0) == ["child"]


def test_a_retry_cut_short_by_a_crash_is_finished_not_queued_twice(tmp_path):
    """A retry writes the fresh copy to queue/ before it removes failed/<id>.json; after a crash
    in between the task shows in both, and the operator retries it again."""
    q = make_queue(tmp_path)
    q.submit([task("flaky")], T0)
    _fail_now(q, "flaky")
    q.write_queued(q.get("flaky"), T0 + 1)  # the first half of a retry, then the crash
    assert q.retry("flaky", T0 + 2)
    assert not (q.paths.failed / "flaky.json").exists()
    assert len([n for n in os.listdir(q.paths.queue) if n.endswith("+flaky.json")]) == 1
