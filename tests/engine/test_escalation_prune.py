"""Decided escalation files are pruned after the retention; pending ones never; the cost
ledger keeps what was spent; the supervisor's tick prunes at most once a minute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.escalation.cloud_tier import CloudTier
from engine.escalation.service import build_manager
from engine.escalation.store import Escalation, EscalationStore
from engine.model import Attempt, Task, TaskClass, TaskType
from engine.paths import RigPaths
from engine.routing.nodes import EscalationConfig, NodeConfig, NodeConfigError, RoutingConfig, parse_routing

DAY = 86_400.0
NOW = 1_800_000_000.0


def record(esc_id: str, state: str, settled_at: float, task_id: str = "t") -> Escalation:
    """A record whose last transition happened at ``settled_at`` (created a minute before)."""
    created = settled_at - 60
    history = (f"{created:.3f} created: test",) + ((f"{settled_at:.3f} pending->{state}",) if state != "pending" else ())
    return Escalation(escalation_id=esc_id, task_id=task_id, state=state, reason="test", provider="cloud",
                      model="m", payload={"messages": []}, est_input_tokens=10, est_cost_usd=0.01,
                      created_at=created, expires_at=None, history=history)


def test_old_decided_records_go_while_pending_and_recent_ones_stay(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path).ensure()
    manager = build_manager(paths, RoutingConfig(), EscalationConfig(retention_days=7))
    old = NOW - 8 * DAY
    for esc_id, state, at in [("esc-answered", "answered", old), ("esc-denied", "denied", old),
                              ("esc-expired", "expired", old), ("esc-failed", "failed", old),
                              ("esc-sent", "sent", old), ("esc-old-pending", "pending", NOW - 30 * DAY),
                              ("esc-recent", "denied", NOW - 6 * DAY)]:
        manager.store.save(record(esc_id, state, at))
    manager.ledger.record(at=old, escalation_id="esc-answered", task_id="t", provider="cloud", model="m",
                          tokens_in=10, tokens_out=5, cost_usd=0.02)
    ledger_before = (paths.logs / "cost_ledger.jsonl").read_bytes()

    removed = manager.prune(NOW)

    assert sorted(removed) == ["esc-answered", "esc-denied", "esc-expired", "esc-failed", "esc-sent"]
    assert sorted(e.escalation_id for e in manager.store.all()) == ["esc-old-pending", "esc-recent"]
    assert (paths.logs / "cost_ledger.jsonl").read_bytes() == ledger_before
    assert manager.ledger.totals_by_day(), "what was spent is still in the ledger"


def test_the_retention_counts_from_the_last_transition_not_creation(tmp_path: Path) -> None:
    store = EscalationStore(tmp_path / "esc")
    e = record("esc-1", "answered", NOW - 2 * DAY)
    e = Escalation(**{**e.__dict__, "created_at": NOW - 10 * DAY})  # raised long ago, answered recently
    store.save(e)
    assert store.prune(older_than=NOW - 7 * DAY) == []
    assert store.prune(older_than=NOW - 1 * DAY) == ["esc-1"]


def test_unreadable_files_are_kept_in_rejected_not_pruned(tmp_path: Path) -> None:
    store = EscalationStore(tmp_path / "esc")
    (store.dir / "esc-bad.json").write_text("{not json")
    assert store.prune(older_than=NOW) == []
    assert (store.dir / "rejected" / "esc-bad.json").read_text() == "{not json"  # for the operator to look at
    assert "not valid JSON" in (store.dir / "rejected" / "esc-bad.json.reason.txt").read_text()
    assert store.prune(older_than=NOW) == []


class NoFailedTasks:
    def __init__(self, tasks: list[Task] | None = None) -> None:
        self.tasks = tasks or []

    def recent(self, state: str, limit: int) -> list[Task]:
        return self.tasks[:limit] if state == "failed" else []

    def get(self, task_id: str) -> Task | None:
        return None

    def retry(self, task_id: str, now: float) -> bool:
        return False

    def failed_stamp(self) -> int | None:
        return None


def resolve(task_id: str, result: dict[str, Any], now: float) -> bool:
    return True


def test_the_tick_prunes_at_most_once_a_minute(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path).ensure()
    tier = CloudTier(paths, RoutingConfig(), EscalationConfig(retention_days=1), NoFailedTasks(), resolve)
    try:
        tier.manager.store.save(record("esc-a", "denied", NOW - 2 * DAY))
        tier.tick(NOW)
        assert tier.manager.store.all() == []
        tier.manager.store.save(record("esc-b", "denied", NOW - 2 * DAY))
        tier.tick(NOW + 30)
        assert [e.escalation_id for e in tier.manager.store.all()] == ["esc-b"], "not again within the minute"
        tier.tick(NOW + 61)
        assert tier.manager.store.all() == []
    finally:
        tier.close()


def test_a_failed_task_older_than_the_retention_is_not_offered_again(tmp_path: Path) -> None:
    """Its decided escalation may be pruned already: a restarted supervisor must not re-ask."""
    paths = RigPaths(tmp_path).ensure()
    cloud = NodeConfig("cloud", "http://127.0.0.1:9", "anthropic", "claude-x", 2, external=True, auth_env="K")
    ended = NOW - 8 * DAY
    old = Task(task_id="old", name="gen", type=TaskType.LLM, task_class=TaskClass.LLM, params={"prompt": "p"},
               error="OOM", attempts=tuple(Attempt(i + 1, "w1", ended, ended, "error", None, "OOM") for i in range(2)))
    fresh = Task(task_id="fresh", name="gen", type=TaskType.LLM, task_class=TaskClass.LLM, params={"prompt": "p"},
                 error="OOM", attempts=tuple(Attempt(i + 1, "w1", NOW, NOW, "error", None, "OOM") for i in range(2)))
    tier = CloudTier(paths, RoutingConfig(nodes=(cloud,)), EscalationConfig(retention_days=7),
                     NoFailedTasks([old, fresh]), resolve)
    try:
        tier.tick(NOW)
        assert [e.task_id for e in tier.manager.pending()] == ["fresh"]
    finally:
        tier.close()


def test_retention_days_is_read_from_the_config_and_checked() -> None:
    _, esc = parse_routing({"escalation": {"retention_days": 3}}, "galaxy.toml")
    assert esc.retention_days == 3
    assert EscalationConfig().retention_days == 7
    with pytest.raises(NodeConfigError, match="retention_days"):
        parse_routing({"escalation": {"retention_days": 0}}, "galaxy.toml")

