"""Crash injection: every multi-step queue operation, killed after each of its steps.

For each operation the harness first counts its write steps (CrashingFs with no crash),
then, for every k, sets the scenario up again, kills the operation after step k (and, for
data writes, in the middle of step k+1: a torn file or line), recovers as a restarting
worker would (a fresh FileQueue, reap_stale), drains, and checks: each task in exactly one
state, one ledger line and one task_completed event per completion, dependents released
or failed in cascade, ledger counts equal to the directories, nothing left in tasks/.tmp
or tasks/.journal, and a second recovery changes nothing.
"""

from __future__ import annotations

import os

import pytest

from engine.events import tail_events
from engine.model import TaskStatus
from engine.queue.filequeue import FileQueue
from tests.reliability.crash_harness import (
    LEASE_S,
    T0,
    Scenario,
    check_invariants,
    open_queue,
    policy,
    recover_and_drain,
    run_case,
    task,
)


def _claim(q: FileQueue, task_id: str, worker: str = "w1", now: float = T0) -> None:
    t = q.claim(worker, now, policy(worker), LEASE_S)
    assert t is not None and t.task_id == task_id


def _submit(*tasks):  # type: ignore[no-untyped-def]
    return lambda q: q.submit(list(tasks), T0)


def _submit_claim(*tasks):  # type: ignore[no-untyped-def]
    def setup(q: FileQueue) -> None:
        q.submit(list(tasks), T0)
        _claim(q, tasks[0].task_id)
    return setup


def _failed_with_cascade(q: FileQueue) -> None:
    _submit_claim(task("a", retries=0), task("b", "a"), task("c", "b"))(q)
    q.fail("a", "w1", "exit 1", T0 + 1, retryable=False)


def _reaped_then_late(q: FileQueue) -> None:
    _submit_claim(task("a"))(q)
    assert q.reap_stale(T0 + LEASE_S + 1) == ["a"]  # back in the queue; w1 still finishes it


def _backed_off(q: FileQueue) -> None:
    _submit_claim(task("a"))(q)
    q.fail("a", "w1", "exit 1", T0 + 1)


def _nothing(q: FileQueue) -> None:
    return None


def _restore(q: FileQueue) -> None:
    """galaxy store migrate's write: a complete parent, a failed task, a held one on the parent and a
    waiting one, a delayed one, a waiting one."""
    moved = [task("p").with_changes(status=TaskStatus.COMPLETE, result={"x": 1}),
             task("bad").with_changes(status=TaskStatus.FAILED, error="exit 3"),
             task("kid", "p", "w"), task("later").with_changes(not_before=T0 + 60, retry_count=1), task("w")]
    q.restore(moved, T0)


SCENARIOS = [
    Scenario("submit", _nothing, lambda q: q.submit([task("a"), task("b", "a"), task("c")], T0), ("a", "b", "c")),
    Scenario("claim", _submit(task("a")), lambda q: q.claim("w1", T0, policy("w1"), LEASE_S), ("a",)),
    Scenario("complete", _submit_claim(task("a"), task("b", "a"), task("c", "a", "b")),
             lambda q: q.complete("a", "w1", {"out": 1}, T0 + 1), ("a", "b", "c")),
    Scenario("fail_final_cascade", _submit_claim(task("a"), task("b", "a"), task("c", "b"), task("d", "a")),
             lambda q: q.fail("a", "w1", "exit 2", T0 + 1, retryable=False), ("a", "b", "c", "d")),
    Scenario("fail_final_await", _submit_claim(task("a"), task("b", "a")),
             lambda q: q.fail("a", "w1", "exit 2", T0 + 1, retryable=False, escalate=lambda t: "asks the cloud"),
             ("a", "b")),
    Scenario("fail_retry_later", _submit_claim(task("a")),
             lambda q: q.fail("a", "w1", "exit 1", T0 + 1), ("a",)),
    Scenario("release", _submit_claim(task("a")),
             lambda q: q.release("a", "w1", T0 + 1, "stopping"), ("a",)),
    Scenario("retry", _failed_with_cascade, lambda q: q.retry("a", T0 + 2), ("a", "b", "c")),
    Scenario("late_completion_adoption", _reaped_then_late,
             lambda q: q.complete("a", "w1", {"late": True}, T0 + LEASE_S + 2), ("a",)),
    Scenario("reap", _submit_claim(task("a")), lambda q: q.reap_stale(T0 + LEASE_S + 1), ("a",)),
    Scenario("reap_gives_up", _submit_claim(task("a", retries=0), task("b", "a")),
             lambda q: q.reap_stale(T0 + LEASE_S + 1), ("a", "b")),
    Scenario("promote", _backed_off, lambda q: q.promote_due(T0 + 5_000), ("a",)),
    Scenario("cancel_cascade", _submit(task("a"), task("b", "a")), lambda q: q.cancel("a", T0 + 1, "no"),
             ("a", "b")),
    Scenario("restore", _nothing, _restore, ("p", "bad", "kid", "later", "w")),
    Scenario("resolve", _failed_with_cascade, lambda q: q.resolve_failed("a", {"answer": 42}, T0 + 2),
             ("a", "b", "c")),
]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_crash_after_every_step_is_recovered(tmp_path, sc: Scenario) -> None:
    steps = run_case(tmp_path / "count", sc, None).steps
    assert steps, f"{sc.name} wrote nothing"
    for k in range(len(steps) + 1):
        for torn in ((False, True) if k < len(steps) and steps[k].split()[0] in ("create", "append") else (False,)):
            root = tmp_path / f"k{k}{'t' if torn else ''}"
            run_case(root, sc, k, torn=torn)
            q = recover_and_drain(root)
            try:
                check_invariants(root, sc, q)
            except AssertionError as exc:
                raise AssertionError(f"{sc.name}: killed after step {k} of {steps}"
                                     f"{' (torn write)' if torn else ''}: {exc}") from exc
            finally:
                q.close()


def test_the_suite_sees_the_steps_that_matter(tmp_path) -> None:
    """A completion is: grab, intent, commit, grabbed file gone, ledger, event, release, intent gone."""
    sc = SCENARIOS[2]
    steps = run_case(tmp_path, sc, None).steps
    kinds = [s.split()[0] for s in steps]
    assert kinds[0] == "rename" and kinds.count("link") == 1 and kinds.count("append") == 3  # + task_released
    assert kinds.index("create") < kinds.index("link") < kinds.index("append")


def test_recovery_after_the_event_log_was_rotated_writes_no_second_event(tmp_path) -> None:
    """Killed just after its task_completed line; the supervisor rotates events.jsonl before
    anyone recovers: the line is found in events.jsonl.1, not written again."""
    sc = SCENARIOS[2]
    steps = run_case(tmp_path / "count", sc, None).steps
    k = steps.index("append events.jsonl") + 1
    root = tmp_path / "run"
    run_case(root, sc, k)
    events = root / "logs" / "events.jsonl"
    os.rename(events, events.with_name("events.jsonl.1"))
    q = recover_and_drain(root)
    q.close()
    completed = [e["task_id"] for f in (events.with_name("events.jsonl.1"), events)
                 for e in tail_events(f, 1000) if e["event_type"] == "task_completed"]
    assert sorted(completed) == ["a", "b", "c"]


@pytest.mark.parametrize("bad", ["ABSOLUTE", "../outside", "tasks/../../outside", ""])
def test_a_record_naming_a_path_outside_the_root_is_dropped_untouched(tmp_path, bad: str) -> None:
    import json

    outside = tmp_path / "outside"
    outside.write_text("keep me")
    bad = str(outside) if bad == "ABSOLUTE" else bad
    root = tmp_path / "rig"
    q = open_queue(root)
    record = {"op": "complete", "task_id": "x", "at": T0, "unlink": [bad or "tasks/x"], "touch": [],
              "moves": [["tasks/.tmp/a", bad]] if bad else [], "then": "nothing"}
    (q.journal.dir / "0001.x.complete.1.1").write_text(json.dumps(record))
    q.reap_stale(T0)
    q.close()
    assert outside.read_text() == "keep me" and not os.listdir(root / "tasks" / ".journal")
