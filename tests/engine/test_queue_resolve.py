"""A failed task resolved by an approved escalation: complete with the answer, and the
dependents that failed only because of it come back."""

from __future__ import annotations

from pathlib import Path

from queue_helpers import T0, events_of, make_queue, policy, task

from engine.model import TaskClass, TaskStatus


def test_resolve_failed_completes_and_brings_back_cascaded_dependents(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    q.submit([task("a", task_class=TaskClass.LLM, command="generate"),
              task("b", depends_on=("a",)), task("c", depends_on=("b",))], T0)
    got = q.claim("w1", T0, policy("w1"), 30.0)
    assert got is not None and got.task_id == "a"
    q.fail("a", "w1", "local model out of memory", T0 + 1, retryable=False)
    assert q.get("b").status is TaskStatus.FAILED and q.get("c").status is TaskStatus.FAILED  # type: ignore[union-attr]

    assert q.resolve_failed("a", {"text": "answer from the cloud", "advice_only": True}, T0 + 5)
    a = q.get("a")
    assert a is not None and a.status is TaskStatus.COMPLETE and a.result["text"] == "answer from the cloud"  # type: ignore[index]
    assert q.get("b").status is TaskStatus.PENDING  # type: ignore[union-attr]
    assert q.get("c").status is TaskStatus.HELD  # type: ignore[union-attr]
    counts = q.counts()
    assert counts.total("failed") == 0 and counts.total("complete") == 1
    assert [e["task_id"] for e in events_of(tmp_path, "task_completed")] == ["a"]
    assert not q.resolve_failed("a", {"text": "again"}, T0 + 6), "resolved once only"


def test_resolve_refuses_a_task_that_is_not_failed(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    q.submit([task("a")], T0)
    assert not q.resolve_failed("a", {"text": "x"}, T0)
    assert not q.resolve_failed("nope", {"text": "x"}, T0)
