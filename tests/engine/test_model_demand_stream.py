"""The demand learner on the Redis store: it follows the cluster's event stream (a real
redis-server) instead of events.jsonl, learns from this rig's completions and from claimable
work that names no rig, and leaves other rigs' lines out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.events import EventLog
from engine.scheduling.costs import SwitchCosts
from engine.store.redis.channels import redis_channels
from engine.store.redis.client import connect
from engine.supervisor.model_demand import ModelDemand
from tests.support.redis_server import redis_server  # noqa: F401

T0 = 1_700_000_000.0
QWEN = "qwen2.5:7b"


class DictLookup:
    def __init__(self, models: dict[str, str | None]) -> None:
        self.known = models

    def models(self, task_ids: Sequence[str], budget: int) -> dict[str, str | None]:
        return {i: self.known.get(i) for i in list(task_ids)[:budget]}


def test_the_learner_follows_the_stream_and_keeps_to_its_rig(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server")
    cluster = "md" + uuid.uuid4().hex[:8]
    mine, other = redis_channels(connect(server.url), cluster, "rig-a"), redis_channels(connect(server.url), cluster,
                                                                                           "rig-b")
    try:
        cli = EventLog(tmp_path / "unused.jsonl", stream=mine.events)  # a submitter names no rig
        a = EventLog(tmp_path / "unused.jsonl", {"rig": "rig-a"}, stream=mine.events)
        b = EventLog(tmp_path / "unused.jsonl", {"rig": "rig-b"}, stream=other.events)
        ids = {f"q{i}": QWEN for i in range(4)}
        demand = ModelDemand(tmp_path / "unused.jsonl", DictLookup(ids), n_groups=4, priors=SwitchCosts(),
                             stream=mine.events, rig="rig-a")
        for i in ids:
            cli.emit("task_submitted", at=T0, task_id=i, task_class="llm")
        a.emit("task_completed", at=T0 + 100, task_id="q0", worker_id="gpu0", duration_ms=100_000.0)
        a.emit("task_completed", at=T0 + 101, task_id="q1", worker_id="gpu0", duration_ms=120_000.0)
        a.emit("task_completed", at=T0 + 102, task_id="q2", worker_id="gpu1", duration_ms=140_000.0)
        b.emit("task_completed", at=T0 + 103, task_id="q3", worker_id="gpu0", duration_ms=900_000.0)
        v = demand.view(T0 + 200)[QWEN]
        assert v.claimable == 4  # the submissions count for every rig
        assert (v.task_s, v.task_s_samples) == (120.0, 3)  # rig-b's 900 s run is not ours
        assert not (tmp_path / "unused.jsonl").exists()
    finally:
        mine.close()
        other.close()
