"""The escalation lifecycle. Nothing leaves the rig unless an operator approved it.

``request`` packages the task, its local attempts and their errors into the exact payload
a provider would receive (redacted, untrusted data tagged), estimates tokens and cost
and stores it as pending. ``approve`` checks the daily budget, then sends; ``deny`` and
``expire_due`` never send. The answer is advice: it becomes the task's result and
nothing else (it cannot queue tasks or run commands).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from engine.escalation.pricing import CostLedger, Price, day_of, estimate_cost
from engine.escalation.prompt import build_prompt
from engine.escalation.providers import CloudProvider, ProviderError
from engine.escalation.redact import redact
from engine.escalation.store import (ANSWERED, APPROVED, DENIED, EXPIRED, FAILED, PENDING, SENT, Escalation,
                                     EscalationStateError, EscalationStore, transition)
from engine.model import Task
from engine.routing.nodes import EscalationConfig

DAY_S = 86_400.0
INSTRUCTIONS = ("You are consulted by a local GPU rig whose own models could not finish a task. Answer the "
                "task as well as you can. Your answer is advice returned to the rig's operator.")


class BudgetExceeded(RuntimeError):
    pass


class UnknownEscalation(KeyError):
    """A KeyError whose message prints as written (KeyError's own str() adds quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class EscalationOutcome:
    escalation: Escalation
    message: str


def escalation_reason(task: Task, local_failures: int, cfg: EscalationConfig, *, no_local_tier: bool = False,
                      low_confidence: bool = False) -> str | None:
    """Why this task should go to the cloud tier, or None. Pure."""
    if task.requires_external:
        return "task asks for an external model (requires_external)"
    if no_local_tier:
        return "no local tier can take it"
    if low_confidence:
        return "the local model marked its answer low-confidence"
    if local_failures >= cfg.after_local_failures:
        return f"failed locally {local_failures} times"
    return None


class EscalationManager:
    def __init__(self, store: EscalationStore, providers: Mapping[str, CloudProvider], prices: Mapping[str, Price],
                 ledger: CostLedger, config: EscalationConfig, *,
                 on_answer: Callable[[Escalation], None] = lambda e: None,
                 on_denied: Callable[[Escalation], None] = lambda e: None,
                 on_retry_local: Callable[[Escalation], None] = lambda e: None,
                 on_event: Callable[[str, dict[str, object]], None] = lambda k, d: None) -> None:
        self.store = store
        self.providers = dict(providers)
        self.prices = dict(prices)
        self.ledger = ledger
        self.config = config
        self.on_answer = on_answer
        self.on_denied = on_denied
        self.on_retry_local = on_retry_local
        self.on_event = on_event
        self._decisions = threading.RLock()

    # ---- raising ----
    def request(self, task: Task, reason: str, now: float, provider: str | None = None) -> Escalation:
        existing = [e for e in self.store.for_task(task.task_id) if e.state in (PENDING, APPROVED, SENT)]
        if existing:
            return existing[0]
        if not self.providers:
            raise ProviderError("no external node is configured (add a [[node]] with external = true)")
        name = provider or sorted(self.providers)[0]
        prov = self.providers[name]
        attempts = tuple(
            f"attempt {a.number} on {a.worker_id}: {a.outcome}" + (f" ({a.error})" if a.error else "")
            for a in task.attempts)
        task_text = str(task.params.get("prompt") or task.command or task.name)
        untrusted = str(task.params.get("context") or task.params.get("untrusted") or "")
        prompt = build_prompt(instructions=redact(str(task.params.get("system") or INSTRUCTIONS)),
                              task=redact(task_text), untrusted=redact(untrusted),
                              attempts=redact("\n".join(attempts)))
        max_out = self.config.max_output_tokens
        asked = (task.params.get("options") or {}).get("num_predict") if isinstance(task.params.get("options"), dict) else None
        if isinstance(asked, int) and not isinstance(asked, bool) and 0 < asked < max_out:
            max_out = asked  # the task's own answer limit, when it is below the config's cap
        payload = prov.build_payload(prompt.system, prompt.user, max_out)
        tokens_in, cost = estimate_cost(self.prices.get(name, Price(0.0, 0.0)), prompt.system, prompt.user, max_out)
        e = Escalation(escalation_id="esc-" + uuid.uuid4().hex[:10], task_id=task.task_id, state=PENDING,
                       reason=reason, provider=name, model=prov.model, payload=payload,
                       est_input_tokens=tokens_in, est_cost_usd=round(cost, 6), created_at=now,
                       expires_at=now + self.config.approval_timeout_s, sensitive=task.sensitive,
                       attempts=attempts, history=(f"{now:.3f} created: {reason}",))
        self.store.save(e)
        self.on_event("escalation_requested", {"escalation_id": e.escalation_id, "task_id": task.task_id,
                                               "reason": reason, "est_cost_usd": e.est_cost_usd})
        return e

    # ---- operator decisions ----
    def budget_left(self, now: float) -> float:
        return self.config.daily_budget_usd - self.ledger.spent_on(day_of(now))

    def _pending(self, escalation_id: str, now: float) -> Escalation:
        e = self.store.get(escalation_id)
        if e is None:
            raise UnknownEscalation(f"no escalation {escalation_id!r}")
        if e.state == PENDING and e.expires_at is not None and now >= e.expires_at:
            self._expire(e, now)
            raise EscalationStateError(f"escalation {escalation_id} expired before it was approved")
        if e.state != PENDING:
            raise EscalationStateError(f"escalation {escalation_id} is {e.state}, not pending")
        return e

    def approve(self, escalation_id: str, now: float, by: str, *, override_budget: bool = False,
                timeout_s: float = 120.0) -> EscalationOutcome:
        with self._decisions:  # one decision per escalation: approve, deny and expiry never race
            e = self._pending(escalation_id, now)
            left = self.budget_left(now)
            if e.est_cost_usd > left and not override_budget:
                raise BudgetExceeded(f"estimated ${e.est_cost_usd:.4f} exceeds today's budget left "
                                     f"${left:.4f} of ${self.config.daily_budget_usd:.2f}; approve with override")
            e = transition(e, APPROVED, now, f"by {by}", decided_at=now, decided_by=by,
                           budget_override=override_budget)
            self.store.save(e)
        return self._send(e, now, timeout_s)

    def _send(self, e: Escalation, now: float, timeout_s: float) -> EscalationOutcome:
        e = transition(e, SENT, now)
        self.store.save(e)
        prov = self.providers.get(e.provider)
        try:
            if prov is None:
                raise ProviderError(f"provider {e.provider!r} is no longer configured")
            answer = prov.send(e.payload, timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure must end the request as failed, never leave it "sent"
            if not isinstance(exc, ProviderError):
                exc = ProviderError(f"{type(exc).__name__}: {exc}")
            e = transition(e, FAILED, now, str(exc), error=str(exc))
            self.store.save(e)
            self.on_event("escalation_failed", {"escalation_id": e.escalation_id, "error": str(exc)})
            return EscalationOutcome(e, f"sent, but the provider failed: {exc}")
        price = self.prices.get(e.provider, Price(0.0, 0.0))
        cost = price.cost(answer.tokens_in, answer.tokens_out)
        self.ledger.record(at=now, escalation_id=e.escalation_id, task_id=e.task_id, provider=e.provider,
                           model=answer.model, tokens_in=answer.tokens_in, tokens_out=answer.tokens_out,
                           cost_usd=cost)
        e = transition(e, ANSWERED, now, answer=answer.text, tokens_in=answer.tokens_in,
                       tokens_out=answer.tokens_out, cost_usd=round(cost, 6))
        self.store.save(e)
        self.on_event("escalation_answered", {"escalation_id": e.escalation_id, "task_id": e.task_id,
                                              "tokens_in": answer.tokens_in, "tokens_out": answer.tokens_out,
                                              "cost_usd": round(cost, 6)})
        self.on_answer(e)
        return EscalationOutcome(e, f"answered: {answer.tokens_in} in / {answer.tokens_out} out, ${cost:.4f}")

    def deny(self, escalation_id: str, now: float, by: str, reason: str) -> EscalationOutcome:
        if not reason.strip():
            raise ValueError("a denial needs a reason")
        with self._decisions:
            e = self._pending(escalation_id, now)
            e = transition(e, DENIED, now, f"by {by}: {reason}", decided_at=now, decided_by=by,
                           deny_reason=reason)
            self.store.save(e)
        self.on_event("escalation_denied", {"escalation_id": e.escalation_id, "task_id": e.task_id,
                                            "reason": reason})
        self.on_denied(e)
        return EscalationOutcome(e, f"denied: {reason}")

    def _expire(self, e: Escalation, now: float) -> Escalation:
        e = transition(e, EXPIRED, now, f"no decision in {self.config.approval_timeout_s:.0f}s; "
                                         f"safe default: {self.config.on_timeout}")
        self.store.save(e)
        self.on_event("escalation_expired", {"escalation_id": e.escalation_id, "task_id": e.task_id,
                                             "default": self.config.on_timeout})
        if self.config.on_timeout == "retry_local":
            self.on_retry_local(e)
        else:
            self.on_denied(replace(e, deny_reason="approval timed out"))
        return e

    def expire_due(self, now: float) -> list[Escalation]:
        with self._decisions:
            return [self._expire(e, now) for e in self.store.all()
                    if e.state == PENDING and e.expires_at is not None and now >= e.expires_at]

    def prune(self, now: float) -> list[str]:
        """Drop decided records older than the retention (under the decision lock, so a record
        is never removed mid-decision)."""
        with self._decisions:
            removed = self.store.prune(older_than=now - self.config.retention_days * DAY_S)
        if removed:
            self.on_event("escalations_pruned", {"count": len(removed), "retention_days": self.config.retention_days})
        return removed

    def pending(self) -> list[Escalation]:
        return [e for e in self.store.all() if e.state == PENDING]


__all__ = ["EscalationManager", "BudgetExceeded", "EscalationStateError", "escalation_reason",
           "EscalationOutcome"]
