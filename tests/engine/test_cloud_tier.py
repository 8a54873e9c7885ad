"""The supervisor's cloud tier: failed LLM tasks raise escalations, commands decide them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.commands import CommandKind, make_command
from engine.escalation.cloud_tier import CloudTier
from engine.escalation.providers import AnthropicProvider
from engine.escalation.service import build_manager
from engine.model import Attempt, Task, TaskClass, TaskType
from engine.paths import RigPaths
from engine.routing.nodes import EscalationConfig, NodeConfig, RoutingConfig
from tests.doubles.provider_api import ProviderApiDouble

NOW = 1_800_000_000.0


class FailedTasks:
    """In-repo double of the queue's failed-task view."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = {t.task_id: t for t in tasks}
        self.retried: list[str] = []
        self.resolved: dict[str, dict[str, Any]] = {}

    def recent(self, state: str, limit: int) -> list[Task]:
        return list(self.tasks.values())[:limit] if state == "failed" else []

    def get(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id)

    def retry(self, task_id: str, now: float) -> bool:
        self.retried.append(task_id)
        return True

    def failed_stamp(self) -> int | None:
        return None

    def resolve(self, task_id: str, result: dict[str, Any], now: float) -> bool:
        self.resolved[task_id] = result
        return True


@pytest.fixture()
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderApiDouble]:
    monkeypatch.setenv("K", "test-key")
    d = ProviderApiDouble(api_key="test-key", answer="Use a smaller batch.").start()
    yield d
    d.stop()


def tier_for(tmp_path: Path, api: ProviderApiDouble, tasks: list[Task]) -> tuple[CloudTier, FailedTasks]:
    paths = RigPaths(tmp_path).ensure()
    node = NodeConfig("cloud", api.url, "anthropic", "claude-x", 2, external=True, auth_env="K",
                      price_in_per_mtok=3, price_out_per_mtok=15)
    routing = RoutingConfig(nodes=(node,))
    q = FailedTasks(tasks)
    tier = CloudTier(paths, routing, EscalationConfig(), q, q.resolve)
    tier.manager = build_manager(paths, routing, EscalationConfig(),
                                 providers={"cloud": AnthropicProvider("cloud", api.url, "claude-x", "K")},
                                 on_answer=tier._answered, on_denied=tier._denied,
                                 on_retry_local=tier._retry_local)
    return tier, q


def failed_llm(task_id: str, failures: int) -> Task:
    return Task(task_id=task_id, name="gen", type=TaskType.LLM, task_class=TaskClass.LLM,
                params={"prompt": "Explain CUDA OOM"}, error="out of memory",
                attempts=tuple(Attempt(i + 1, "w1", NOW, NOW, "error", None, "OOM") for i in range(failures)))


def wait_for(pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_scan_raises_only_for_qualifying_tasks_and_approve_resolves(tmp_path: Path, api: ProviderApiDouble) -> None:
    tier, q = tier_for(tmp_path, api, [failed_llm("a", 2), failed_llm("b", 1)])
    tier.tick(NOW)
    pending = tier.manager.pending()
    assert [e.task_id for e in pending] == ["a"] and api.requests == []
    assert tier.escalation_views(NOW)[0].state == "pending"
    cmd = make_command(CommandKind.APPROVE, pending[0].escalation_id, source="tui op@rig")
    out = tier._cmd_approve(cmd, NOW)
    assert out[0] == "ok"
    wait_for(lambda: "a" in q.resolved)
    assert q.resolved["a"]["text"] == "Use a smaller batch." and q.resolved["a"]["advice_only"] is True
    assert len(api.requests) == 1
    tier.close()


def test_deny_needs_a_reason_and_sends_nothing(tmp_path: Path, api: ProviderApiDouble) -> None:
    tier, q = tier_for(tmp_path, api, [failed_llm("a", 3)])
    tier.tick(NOW)
    e = tier.manager.pending()[0]
    assert tier._cmd_deny(make_command(CommandKind.DENY, e.escalation_id, source="x"), NOW)[0] == "refused"
    out = tier._cmd_deny(make_command(CommandKind.DENY, e.escalation_id, source="x", reason="not worth it"), NOW)
    assert out[0] == "ok"
    assert tier._cmd_approve(make_command(CommandKind.APPROVE, e.escalation_id, source="x"), NOW)[0] == "refused"
    tier.close()
    assert api.requests == [] and q.resolved == {}


def test_unknown_escalation_and_node_are_refused(tmp_path: Path, api: ProviderApiDouble) -> None:
    tier, _ = tier_for(tmp_path, api, [])
    assert tier._cmd_approve(make_command(CommandKind.APPROVE, "esc-nope", source="x"), NOW)[0] == "refused"
    out = tier._cmd_breaker(make_command(CommandKind.BREAKER_RESET, "ghost", source="x"), NOW)
    assert out[0] == "refused" and "ghost" in out[1]
    tier.close()
