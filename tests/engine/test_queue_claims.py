"""Claim order, lanes, exactly-once completion, counts and views of the FileQueue."""

from __future__ import annotations

import os

import pytest
from queue_helpers import T0, drain_ids, events_of, make_queue, policy, task

from engine.model import TaskClass, TaskStatus, TaskType, TaskValidationError
from engine.queue.names import parse_processing_name, parse_queue_name


def test_claim_order_resource_then_priority_then_age(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("old-low", priority=3)], T0)
    q.submit([task("high", priority=9), task("mid", priority=5)], T0 + 1)
    q.submit([task("res", priority=1, task_class=TaskClass.RESOURCE, type=TaskType.UNLOAD_LLM)], T0 + 2)
    q.submit([task("mid-newer", priority=5)], T0 + 3)
    assert drain_ids(q, T0 + 4) == ["res", "high", "mid", "mid-newer", "old-low"]


def test_preferred_class_before_priority_and_disallowed_class_untouched(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("cpu-hi", priority=9), task("script-lo", priority=2, task_class=TaskClass.SCRIPT),
              task("llm", task_class=TaskClass.LLM, model="qwen2.5:7b")], T0)
    got = drain_ids(q, T0 + 1, preferred_classes=(TaskClass.SCRIPT,),
                    allowed_classes=(TaskClass.CPU, TaskClass.SCRIPT))
    assert got == ["script-lo", "cpu-hi"]
    assert q.get("llm").status is TaskStatus.PENDING


def test_aging_lets_an_old_low_priority_task_overtake(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("starving", priority=1)], T0)
    q.submit([task("fresh-high", priority=9)], T0 + 3000)
    # 300 s per level: after 3000 s the old task counts as priority 10 > 9.
    assert drain_ids(q, T0 + 3000) == ["starving", "fresh-high"]
    q.submit([task("starving2", priority=1)], T0 + 4000)
    q.submit([task("fresh2", priority=9)], T0 + 4000 + 100)
    assert drain_ids(q, T0 + 4100) == ["fresh2", "starving2"]


def test_policy_sees_only_lane_heads(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task(f"a{i}", priority=5) for i in range(300)] + [task(f"b{i}", priority=7) for i in range(200)]
             + [task(f"m{i}", task_class=TaskClass.LLM, model="qwen2.5:7b") for i in range(50)], T0)
    seen = []

    def spy(cands, now):
        seen.append(list(cands))
        return policy()(cands, now)

    t = q.claim("w1", T0, spy, 30)
    assert t.task_id == "b0"
    assert len(seen[0]) == 3
    depths = {c.task_id: c.lane_depth for c in seen[0]}
    assert depths == {"a0": 300, "b0": 200, "m0": 50}
    m = next(c for c in seen[0] if c.task_id == "m0")
    assert (m.model, m.affinity) == ("qwen2.5:7b", "llm:qwen2.5:7b")


@pytest.mark.parametrize("use_inotify", [True, False], ids=["inotify", "polling"])
def test_two_queues_on_one_directory_never_hand_out_a_task_twice(tmp_path, use_inotify):
    a, b = make_queue(tmp_path, use_inotify=use_inotify), make_queue(tmp_path, use_inotify=use_inotify)
    a.submit([task(f"t{i}") for i in range(100)], T0)
    got: list[str] = []
    pol = policy()
    for i in range(200):
        q, wid = (a, "wa") if i % 2 else (b, "wb")
        t = q.claim(wid, T0, pol, 30)
        if t is None:
            continue
        got.append(t.task_id)
        q.complete(t.task_id, wid, {}, T0)
    assert sorted(got) == sorted(f"t{i}" for i in range(100))
    assert q.counts().by_state["complete"] == {"cpu": 100}


def test_claimed_task_carries_lease_and_name_encodes_owner(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("x")], T0)
    t = q.claim("w-7", T0 + 5, policy(), 40.0)
    assert (t.status, t.lease_owner, t.lease_expires) == (TaskStatus.PROCESSING, "w-7", T0 + 45)
    [name] = os.listdir(q.paths.processing)
    info = parse_processing_name(name)
    assert (info.task_id, info.worker_id, info.first_expiry) == ("x", "w-7", pytest.approx(T0 + 45))
    assert q.get("x").lease_owner == "w-7"


def test_completion_is_recorded_once(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("once")], T0)
    t = q.claim("w1", T0, policy(), 30)
    q.complete(t.task_id, "w1", {"n": 1}, T0 + 1)
    q.complete(t.task_id, "w1", {"n": 2}, T0 + 2)  # a second report of the same run
    assert q.get("once").result == {"n": 1}
    assert q.counts().by_state["complete"] == {"cpu": 1}
    assert len(events_of(tmp_path, "task_completed")) == 1
    assert len(events_of(tmp_path, "duplicate_completion")) == 1


def test_submit_rejects_duplicates_and_unknown_deps_before_writing(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("a")], T0)
    with pytest.raises(TaskValidationError, match="already exists"):
        q.submit([task("a"), task("z")], T0)
    with pytest.raises(TaskValidationError, match="unknown dependency 'nope'"):
        q.submit([task("y", depends_on=("nope",))], T0)
    assert q.get("z") is None and q.get("y") is None


def test_counts_waiting_and_recent(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("p1", priority=9), task("p2", priority=3), task("s1", task_class=TaskClass.SCRIPT)], T0)
    q.submit([task("dep", depends_on=("p1",))], T0 + 1)
    t = q.claim("w1", T0 + 2, policy(), 30)
    assert t.task_id == "p1"
    c = q.counts().by_state
    assert c["queue"] == {"cpu": 1, "script": 1} and c["processing"] == {"cpu": 1} and c["held"] == {"cpu": 1}
    waiting = {w.task_id: w.reason for w in q.oldest_waiting(T0 + 10, 10)}
    assert waiting["dep"] == "dependency pending: p1"
    assert waiting["p2"] == "waiting: priority 3 behind 1"
    q.complete("p1", "w1", {}, T0 + 3)
    assert [t.task_id for t in q.recent("complete", 5)] == ["p1"]
    assert q.get("dep").status is TaskStatus.PENDING


def test_queue_names_round_trip_models_with_slashes_and_colons(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("m", task_class=TaskClass.SCRIPT, model="Systran/faster-whisper-small.en:v1+x")], T0)
    [name] = os.listdir(q.paths.queue)
    assert "/" not in name
    assert parse_queue_name(name).model == "Systran/faster-whisper-small.en:v1+x"
    assert q.claim("w1", T0, policy(), 30).model == "Systran/faster-whisper-small.en:v1+x"
