"""Event-log lines as EventViews: task and worker in their fields, everything else in the message."""

from __future__ import annotations

from pathlib import Path

from engine.event_views import event_message, tail_event_views
from engine.events import EventLog

T0 = 1_795_000_000.0


def test_views_carry_task_worker_and_every_other_field(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    log.emit("task_claimed", at=T0, task_id="b.job-intro", worker_id="w1")
    log.emit("task_failed", at=T0 + 1, task_id="b.boom-a", worker_id="w3", duration_ms=1200.0,
             error="exit code 1: Traceback\nValueError: bad", model="qwen2.5:3b")
    log.emit("model_loaded", at=T0 + 2, worker_id="w5", gpu_id=5, model="qwen2.5:7b", load_s=4.2)
    (tmp_path / "events.jsonl").open("a").write("{torn\n")
    views = tail_event_views(tmp_path / "events.jsonl", 10)
    assert [v.event_type for v in views] == ["task_claimed", "task_failed", "model_loaded"]  # log order
    claimed, failed, loaded = views
    assert (claimed.task_id, claimed.worker_id, claimed.message) == ("b.job-intro", "w1", "")
    assert failed.message.startswith("error=exit code 1: Traceback\nValueError: bad duration_ms=1200.0")
    assert "model=qwen2.5:3b" in failed.message and "b.boom-a" not in failed.message
    assert loaded.task_id is None and loaded.message == "model=qwen2.5:7b load_s=4.2"  # w5's own GPU: implied


def test_message_skips_fields_that_say_nothing() -> None:
    assert event_message({"timestamp": "x", "event_type": "t", "reason": "", "source": None, "n": 0,
                          "retry_count": 0}) == "n=0"
    assert event_message({"event_type": "gpu_hot", "worker_id": "supervisor", "gpu_id": 2, "retry_count": 1}) == \
        "gpu_id=2 retry_count=1"
