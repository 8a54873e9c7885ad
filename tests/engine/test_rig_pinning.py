"""Pinning (docs/cluster.md "Pinning: which rig runs a task"): a task's ``rig``, a plan's tasks
pinned to the submitting rig unless ``rig: any``, claims and wait reasons that respect it, and the
Redis lanes that keep a head pinned elsewhere from hiding free work (a real redis-server)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from engine.model import Task, TaskClass, TaskValidationError
from engine.plans import PlanError, parse_plan_text
from engine.queue.protocol import Candidate, WaitingTask
from engine.scheduling.capability import cannot_run, capabilities_of, waiting_reason
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.store.redis.client import connect
from engine.store.redis.queue import QueueClock, RedisQueue
from tests.support.redis_server import redis_server  # noqa: F401

PLAN = """# p
## here
- command: echo here
## anywhere
- command: echo anywhere
- rig: any
## there
- command: echo there
- rig: gaming-pc
"""


def task(task_id: str, rig: str | None = None, **extra: object) -> Task:
    return Task.from_dict({"task_id": task_id, "name": task_id, "command": "true", "task_class": "cpu",
                           **({"rig": rig} if rig is not None else {}), **extra})


def test_a_task_names_a_rig_or_any_and_a_bad_name_is_refused_naming_the_field() -> None:
    assert task("a", "lab-server").rig == "lab-server"
    assert task("a", "any").rig is None and task("a", "ANY").rig is None and task("a").rig is None
    assert task("a", "lab-server").to_dict()["rig"] == "lab-server"
    assert "rig" not in task("a").to_dict()  # a task file of an unpinned task is as before
    assert Task.from_dict(task("a", "lab").to_dict()).rig == "lab"
    with pytest.raises(TaskValidationError, match="rig name 'a b'") as err:
        task("a", "a b")
    assert err.value.field == "rig"


def test_a_plan_is_pinned_to_the_submitting_rig_unless_a_task_says_otherwise() -> None:
    pinned = {t.name: t.rig for t in parse_plan_text(PLAN, filename="p.md", now=1.0, rig="lab-server")}
    assert pinned == {"here": "lab-server", "anywhere": None, "there": "gaming-pc"}
    alone = {t.name: t.rig for t in parse_plan_text(PLAN, filename="p.md", now=1.0)}  # the file store: no rig
    assert alone == {"here": None, "anywhere": None, "there": "gaming-pc"}
    released = parse_plan_text("- rig: any\n## a\n- command: echo\n", filename="p.md", now=1.0, rig="lab")
    assert [t.rig for t in released] == [None]  # a defaults list releases the whole plan
    with pytest.raises(PlanError, match=r"p\.md:3: .*rig name 'x y'"):
        parse_plan_text("## a\n- command: echo\n- rig: x y\n", filename="p.md", now=1.0, rig="lab")


def test_claims_and_wait_reasons_respect_the_pinned_rig() -> None:
    on_a = capabilities_of("none", {}, rig="rig-a")
    assert cannot_run(TaskClass.CPU, None, on_a, rig="rig-b") == "is on rig rig-a; the task is pinned to rig rig-b"
    assert cannot_run(TaskClass.CPU, None, on_a, rig="rig-a") is None
    assert cannot_run(TaskClass.CPU, None, on_a) is None
    waiting = WaitingTask("t1", "t1", "cpu", 5, 0.0, "next in line", rig="rig-b")
    assert waiting_reason(waiting, [on_a]) == "pinned to rig rig-b (no live worker there)"
    assert waiting_reason(waiting, [on_a, capabilities_of("none", {}, rig="rig-b")]) is None
    policy = make_claim_policy(WorkerProfile("gpu0", capabilities=on_a))
    offered = [Candidate("pinned", TaskClass.CPU, None, 9, 0.0, rig="rig-b"),
               Candidate("free", TaskClass.CPU, None, 1, 0.0),
               Candidate("mine", TaskClass.CPU, None, 1, 1.0, rig="rig-a")]
    assert [c.task_id for c in policy(offered, 10.0)] == ["free", "mine"]


def test_redis_lanes_per_pinned_rig_keep_free_work_claimable(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server")
    client = connect(server.url)
    q = RedisQueue(client, "pin" + uuid.uuid4().hex[:8], clock=QueueClock.CALLER)
    try:
        q.submit([task("b1", "rig-b", created_at=1.0), task("free", created_at=2.0), task("a1", "rig-a", created_at=3.0)],
                 now=10.0)
        lanes = sorted(((ln.rig or ""), ln.count) for ln in q.counts().lanes)  # the stall alert's view
        assert lanes == [("", 1), ("rig-a", 1), ("rig-b", 1)]
        on_a = make_claim_policy(WorkerProfile("gpu0", capabilities=capabilities_of("none", {}, rig="rig-a")))
        on_b = make_claim_policy(WorkerProfile("gpu0", capabilities=capabilities_of("none", {}, rig="rig-b")))
        got_a = [q.claim("a-worker", 11.0, on_a, 60.0) for _ in range(3)]
        assert sorted(t.task_id for t in got_a if t is not None) == ["a1", "free"]  # b1 stays for rig-b
        waiting = q.oldest_waiting(11.0, 10)
        assert [(w.task_id, w.rig) for w in waiting] == [("b1", "rig-b")]
        claimed_b = q.claim("b-worker", 12.0, on_b, 60.0)
        assert claimed_b is not None and claimed_b.task_id == "b1" and claimed_b.rig == "rig-b"
    finally:
        q.close()
        client.close()
