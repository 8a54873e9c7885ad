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


def test_a_clusters_event_names_its_workers_rig_with_the_worker(tmp_path: Path) -> None:
    """On a shared store every rig's lines carry ``rig`` (worker names repeat): it goes with the
    worker (the Events view shows ``@gpu0@lab``), not into the message."""
    from engine.model import worker_at

    log = EventLog(tmp_path / "events.jsonl", {"rig": "lab"})
    log.emit("task_completed", at=T0, task_id="t1", worker_id="gpu0", duration_ms=10.0)
    EventLog(tmp_path / "events.jsonl").emit("task_completed", at=T0 + 1, task_id="t2", worker_id="gpu0")
    on_lab, single = tail_event_views(tmp_path / "events.jsonl", 10)
    assert (on_lab.rig, on_lab.message) == ("lab", "duration_ms=10.0")
    assert worker_at(on_lab.worker_id, on_lab.rig) == "gpu0@lab" and single.rig is None
