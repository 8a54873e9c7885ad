"""Wires escalation into a running rig: builds providers from the configured external
nodes, finds tasks that should escalate, turns answers into task results, and exposes
views for the snapshot. The supervisor owns one; the CLI builds one when no supervisor
runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.audit import FileAuditLog
from engine.escalation.manager import EscalationManager, escalation_reason
from engine.escalation.pricing import CostLedger, Price, day_of
from engine.escalation.providers import AnthropicProvider, CloudProvider, OpenAIChatProvider
from engine.escalation.redact import redact
from engine.escalation.store import OPEN_STATES, Escalation, EscalationStore
from engine.event_types import EventType, OnEvent
from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.routing.nodes import EscalationConfig, NodeConfig, RoutingConfig
from engine.snapshot import EscalationView
from engine.store.channels import AuditLog, EscalationRecords

PREVIEW_CHARS = 4000
LOW_CONFIDENCE_MARK = "low-confidence"
"""An LLM handler that sees the local model flag its own answer fails the task with an
error containing this mark; the cloud tier then offers escalation."""


def provider_for(node: NodeConfig) -> CloudProvider:
    if node.backend == "anthropic":
        return AnthropicProvider(node.name, node.endpoint, node.model, node.auth_env or "ANTHROPIC_API_KEY")
    return OpenAIChatProvider(node.name, node.endpoint, node.model, node.auth_env or "OPENAI_API_KEY")


def build_manager(paths: RigPaths, routing: RoutingConfig, cfg: EscalationConfig, *,
                  providers: dict[str, CloudProvider] | None = None,
                  on_answer: Callable[[Escalation], None] = lambda e: None,
                  on_denied: Callable[[Escalation], None] = lambda e: None,
                  on_retry_local: Callable[[Escalation], None] = lambda e: None,
                  on_event: OnEvent = lambda k, d: None,
                  on_failed: Callable[[Escalation], None] = lambda e: None,
                  store: EscalationRecords | None = None, audit: AuditLog | None = None) -> EscalationManager:
    """The manager over ``store`` and ``audit`` (the configured store's channels; None: the rig's files)."""
    external = [n for n in routing.nodes if n.external]
    provs = providers if providers is not None else {n.name: provider_for(n) for n in external}
    prices = {n.name: Price(n.price_in_per_mtok, n.price_out_per_mtok) for n in external}
    def rejected(eid: str, why: str) -> None:  # a bad record, set aside
        on_event(EventType.ESCALATION_REJECTED, {"escalation_id": eid, "error": why})

    if store is None:
        store = EscalationStore(paths.escalations, on_reject=rejected)
    elif store.on_reject is None:
        store.on_reject = rejected
    if audit is None:
        audit = FileAuditLog(paths.audit)
    return EscalationManager(store, provs, prices,
                             CostLedger(paths.logs / "cost_ledger.jsonl"), cfg, on_answer=on_answer,
                             on_denied=on_denied, on_retry_local=on_retry_local, on_event=on_event,
                             audit=audit.append, on_failed=on_failed)


def preview_of(e: Escalation) -> str:
    """Exactly what would leave the rig: the request body, as JSON text."""
    import json

    text = json.dumps(e.payload, indent=1, ensure_ascii=False)
    if e.sensitive:
        text = "SENSITIVE TASK: its content would leave the rig.\n" + text
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + f"\n... ({len(text)} chars in all)"


def escalation_views(manager: EscalationManager, now: float, limit: int = 20) -> tuple[EscalationView, ...]:
    left = manager.budget_left(now)
    stored = manager.store.all()  # every escalation file: read once per snapshot, not twice
    rows = [e for e in stored if e.state in OPEN_STATES]
    rows += [e for e in reversed(stored) if e.state not in OPEN_STATES][:5]
    return tuple(EscalationView(
        escalation_id=e.escalation_id, task_id=e.task_id, state=e.state, reason=e.reason, provider=e.provider,
        model=e.model, est_input_tokens=e.est_input_tokens, est_cost_usd=e.est_cost_usd, budget_left_usd=left,
        created_at=e.created_at, expires_at=e.expires_at, preview=preview_of(e)) for e in rows[:limit])


def should_escalate(task: Task, cfg: EscalationConfig) -> str | None:
    """For a task that ended in failed/: does it qualify? Only LLM work escalates."""
    if task.task_class is not TaskClass.LLM:
        return None
    local_failures = sum(1 for a in task.attempts if a.outcome in ("error", "timeout", "lost"))
    low_conf = bool((task.result or {}).get("low_confidence")) or LOW_CONFIDENCE_MARK in (task.error or "")
    no_local = "no local node" in (task.error or "") or "no local tier" in (task.error or "")
    return escalation_reason(task, local_failures, cfg, no_local_tier=no_local, low_confidence=low_conf)


def cost_summary(manager: EscalationManager, now: float) -> dict[str, Any]:
    return {"today": day_of(now), "spent_usd": round(manager.ledger.spent_on(day_of(now)), 6),
            "budget_usd": manager.config.daily_budget_usd, "left_usd": round(manager.budget_left(now), 6),
            "by_day": manager.ledger.totals_by_day()}


__all__ = [
    "Path",
    "build_manager",
    "cost_summary",
    "escalation_views",
    "preview_of",
    "provider_for",
    "redact",
    "should_escalate",
]
