"""The escalation lifecycle. Nothing leaves the rig unless an operator approved it.

``request`` packages the task, its local attempts and their errors into the exact payload
a provider would receive (redacted, untrusted data tagged), estimates tokens and cost
and stores it as pending. ``decide_approve``, ``deny`` and ``expire_due`` are each one
compare-and-set on the store (``EscalationRecords.compare_and_set``: the first process, on
any rig, wins; the others get ``AlreadyDecided`` naming it); ``send_approved`` claims the send
the same way, so at most one request leaves per escalation whichever processes race. Every
transition is audited.
The answer is advice: it becomes the task's result and nothing else (it cannot queue
tasks or run commands).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from engine.escalation.decisions import AlreadyDecided, Audit, audit_record, clock_text
from engine.escalation.pricing import CostLedger, Price, day_of, estimate_cost
from engine.escalation.prompt import build_prompt
from engine.escalation.providers import CloudProvider, ProviderError
from engine.escalation.redact import redact
from engine.escalation.store import (
    ANSWERED,
    APPROVED,
    DENIED,
    EXPIRED,
    FAILED,
    PENDING,
    SENT,
    Escalation,
    EscalationState,
    EscalationStateError,
    transition,
)
from engine.event_types import EventType, OnEvent
from engine.ids import IdKind, InvalidId, id_problem
from engine.model import Task
from engine.routing.nodes import EscalationConfig
from engine.store.channels import EscalationRecords

DAY_S = 86_400.0
SEND_HOLD_MARGIN_S = 60.0
"""A send's hold outlives its request timeout by this much (a Redis hold ends by itself after it)."""
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
    def __init__(self, store: EscalationRecords, providers: Mapping[str, CloudProvider], prices: Mapping[str, Price],
                 ledger: CostLedger, config: EscalationConfig, *,
                 on_answer: Callable[[Escalation], None] = lambda e: None,
                 on_denied: Callable[[Escalation], None] = lambda e: None,
                 on_retry_local: Callable[[Escalation], None] = lambda e: None,
                 on_event: OnEvent = lambda k, d: None,
                 audit: Audit | None = None, on_failed: Callable[[Escalation], None] = lambda e: None) -> None:
        self.store = store
        self.audit: Audit = audit or (lambda record: None)
        self.providers = dict(providers)
        self.prices = dict(prices)
        self.ledger = ledger
        self.config = config
        self.on_answer = on_answer
        self.on_denied = on_denied
        self.on_retry_local = on_retry_local
        self.on_failed = on_failed  # sent but no answer: the task goes back to failed/
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
        self.on_event(EventType.ESCALATION_REQUESTED, {"escalation_id": e.escalation_id, "task_id": task.task_id,
                                               "reason": reason, "est_cost_usd": e.est_cost_usd})
        return e

    # ---- operator decisions ----
    def budget_left(self, now: float) -> float:
        spent = self.ledger.spent_on(day_of(now))
        if self.ledger.last_error:  # what was spent is unknown: nothing is sent without an explicit override
            return 0.0
        return self.config.daily_budget_usd - spent

    def _check_id(self, escalation_id: str) -> None:
        why = id_problem(IdKind.ESCALATION, escalation_id)
        if why is not None:  # never a lock or record path from a bad id
            raise UnknownEscalation(str(InvalidId(IdKind.ESCALATION, escalation_id, why)))

    def _commit(self, new: Escalation, expected: EscalationState) -> Escalation:
        """Write ``new`` if the record is still ``expected``; else the winner is named (AlreadyDecided)."""
        result = self.store.compare_and_set(new, expected)
        if result.written:
            return new
        if result.current is None:
            raise UnknownEscalation(f"no escalation {new.escalation_id!r}")
        raise AlreadyDecided(result.current)

    def _pending(self, escalation_id: str, now: float) -> Escalation:
        """The record, still pending (an overdue one is expired here and refused)."""
        e = self.store.get(escalation_id)
        if e is None:
            raise UnknownEscalation(f"no escalation {escalation_id!r}")
        if e.state == PENDING and e.expires_at is not None and now >= e.expires_at:
            self._expire(e, now)
            raise EscalationStateError(f"escalation {escalation_id} expired at {clock_text(e.expires_at)} "
                                       "before it was approved")
        if e.state != PENDING:
            raise AlreadyDecided(e)
        return e

    def _audit(self, e: Escalation, what: str, now: float, by: str | None, message: str = "") -> None:
        self.audit(audit_record(e, what, now, by, message))

    def decide_approve(self, escalation_id: str, now: float, by: str, *, override_budget: bool = False) -> Escalation:
        """pending -> approved, atomically across processes; AlreadyDecided names the winner."""
        self._check_id(escalation_id)
        with self._decisions:
            e = self._pending(escalation_id, now)
            left = self.budget_left(now)
            if e.est_cost_usd > left and not override_budget:
                unread = f" (the cost ledger cannot be read: {self.ledger.last_error})" if self.ledger.last_error else ""
                raise BudgetExceeded(f"estimated ${e.est_cost_usd:.4f} exceeds today's budget left "
                                     f"${left:.4f}{unread} of ${self.config.daily_budget_usd:.2f}; "
                                     "approve with override")
            e = self._commit(transition(e, APPROVED, now, f"by {by}", decided_at=now, decided_by=by,
                                        budget_override=override_budget), PENDING)
        self._audit(e, "approved", now, by, "over budget (explicit override)" if override_budget else "")
        self.on_event(EventType.ESCALATION_APPROVED, {"escalation_id": e.escalation_id, "task_id": e.task_id, "by": by})
        return e

    def approve(self, escalation_id: str, now: float, by: str, *, override_budget: bool = False,
                timeout_s: float = 120.0) -> EscalationOutcome:
        """Decide and send from this process (the CLI without a supervisor, tests)."""
        e = self.decide_approve(escalation_id, now, by, override_budget=override_budget)
        out = self.send_approved(e.escalation_id, now, timeout_s, by=by)
        if out is None:  # another process claimed the send between our decision and our claim
            cur = self.store.get(e.escalation_id) or e
            return EscalationOutcome(cur, f"approved; another process is sending it (now {cur.state})")
        return out

    def awaiting_send(self) -> list[Escalation]:
        """Approved but not yet sent: the next supervisor (or CLI) sends each exactly once."""
        return [e for e in self.store.all() if e.state == APPROVED]

    def send_approved(self, escalation_id: str, now: float, timeout_s: float = 120.0, *,
                      by: str) -> EscalationOutcome | None:
        """approved -> sent -> answered | failed. The claim (approved -> sent) is a compare-and-set
        made while this process holds the send, so at most one request leaves per escalation and
        the ledger is charged once. None: not ours to send (already sent, not approved, or
        another process is sending it now)."""
        self._check_id(escalation_id)
        sending = self.store.hold_sending(escalation_id, timeout_s + SEND_HOLD_MARGIN_S)
        if sending is None:
            return None
        try:
            with self._decisions:
                e = self.store.get(escalation_id)
                if e is None or e.state != APPROVED:
                    return None
                e = transition(e, SENT, now, f"by {by}")
                if not self.store.compare_and_set(e, APPROVED).written:
                    return None
            self._audit(e, "sent", now, by, f"to {e.provider} ({e.model})")
            return self._send(e, now, timeout_s, by)
        finally:
            sending.release()

    def _send(self, e: Escalation, now: float, timeout_s: float, by: str) -> EscalationOutcome:
        prov = self.providers.get(e.provider)
        try:
            if prov is None:
                raise ProviderError(f"provider {e.provider!r} is no longer configured")
            answer = prov.send(e.payload, timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure must end the request as failed, never leave it "sent"
            if not isinstance(exc, ProviderError):
                exc = ProviderError(f"{type(exc).__name__}: {exc}")
            e = transition(e, FAILED, now, str(exc), error=str(exc))
            self.store.compare_and_set(e, SENT)
            self._audit(e, "failed", now, by, str(exc))
            self.on_event(EventType.ESCALATION_FAILED, {"escalation_id": e.escalation_id, "error": str(exc)})
            self.on_failed(e)
            return EscalationOutcome(e, f"sent, but the provider failed: {exc}")
        price = self.prices.get(e.provider, Price(0.0, 0.0))
        cost = price.cost(answer.tokens_in, answer.tokens_out)
        self.ledger.record(at=now, escalation_id=e.escalation_id, task_id=e.task_id, provider=e.provider,
                           model=answer.model, tokens_in=answer.tokens_in, tokens_out=answer.tokens_out,
                           cost_usd=cost)
        e = transition(e, ANSWERED, now, answer=answer.text, tokens_in=answer.tokens_in,
                       tokens_out=answer.tokens_out, cost_usd=round(cost, 6))
        self.store.compare_and_set(e, SENT)
        self._audit(e, "answered", now, by, f"{answer.tokens_in} in / {answer.tokens_out} out, ${cost:.4f}")
        self.on_event(EventType.ESCALATION_ANSWERED, {"escalation_id": e.escalation_id, "task_id": e.task_id,
                                              "tokens_in": answer.tokens_in, "tokens_out": answer.tokens_out,
                                              "cost_usd": round(cost, 6)})
        self.on_answer(e)
        return EscalationOutcome(e, f"answered: {answer.tokens_in} in / {answer.tokens_out} out, ${cost:.4f}")

    def recover_stranded(self, now: float) -> list[Escalation]:
        """A record left ``sent`` whose sending lock is free: its sender died mid-request. It
        may have reached the provider, so it is never sent again: it fails, saying so."""
        out = []
        for e in self.store.all():
            if e.state != SENT:
                continue
            sending = self.store.hold_sending(e.escalation_id, SEND_HOLD_MARGIN_S)
            if sending is None:
                continue  # its sender is alive
            try:
                with self._decisions:
                    cur = self.store.get(e.escalation_id)
                    if cur is None or cur.state != SENT:
                        continue
                    why = ("the process sending it stopped before an answer was recorded; it may have reached "
                           "the provider, so it is not sent again")
                    cur = transition(cur, FAILED, now, why, error=why)
                    if not self.store.compare_and_set(cur, SENT).written:
                        continue
            finally:
                sending.release()
            self._audit(cur, "failed", now, "recovery", why)
            self.on_event(EventType.ESCALATION_FAILED, {"escalation_id": cur.escalation_id, "error": why})
            self.on_failed(cur)
            out.append(cur)
        return out

    def deny(self, escalation_id: str, now: float, by: str, reason: str) -> EscalationOutcome:
        if not reason.strip():
            raise ValueError("a denial needs a reason")
        self._check_id(escalation_id)
        with self._decisions:
            e = self._pending(escalation_id, now)
            e = self._commit(transition(e, DENIED, now, f"by {by}: {reason}", decided_at=now, decided_by=by,
                                        deny_reason=reason), PENDING)
        self._audit(e, "denied", now, by, reason)
        self.on_event(EventType.ESCALATION_DENIED, {"escalation_id": e.escalation_id, "task_id": e.task_id,
                                            "reason": reason, "by": by})
        self.on_denied(e)
        return EscalationOutcome(e, f"denied by {by}: {reason}")

    def _expire(self, e: Escalation, now: float) -> Escalation:
        """pending -> expired (AlreadyDecided if someone decided first)."""
        e = self._commit(transition(e, EXPIRED, now, f"no decision in {self.config.approval_timeout_s:.0f}s; "
                                                      f"safe default: {self.config.on_timeout}", decided_at=now),
                         PENDING)
        self._audit(e, "expired", now, "expiry", f"safe default: {self.config.on_timeout}")
        self.on_event(EventType.ESCALATION_EXPIRED, {"escalation_id": e.escalation_id, "task_id": e.task_id,
                                             "default": self.config.on_timeout})
        if self.config.on_timeout == "retry_local":
            self.on_retry_local(e)
        else:
            self.on_denied(replace(e, deny_reason="approval timed out", decided_by="expiry"))
        return e

    def expire_due(self, now: float) -> list[Escalation]:
        out = []
        for e in self.store.all():
            if e.state != PENDING or e.expires_at is None or now < e.expires_at:
                continue
            with self._decisions:
                try:
                    out.append(self._expire(e, now))
                except (AlreadyDecided, UnknownEscalation):
                    continue  # someone decided (or pruned) it first
        return out

    def prune(self, now: float) -> list[str]:
        """Drop decided records older than the retention (under the decision lock, so a record
        is never removed mid-decision)."""
        with self._decisions:
            removed = self.store.prune(older_than=now - self.config.retention_days * DAY_S)
        if removed:
            self.on_event(EventType.ESCALATIONS_PRUNED, {"count": len(removed), "retention_days": self.config.retention_days})
        return removed

    def pending(self) -> list[Escalation]:
        return [e for e in self.store.all() if e.state == PENDING]


__all__ = [
    "AlreadyDecided",
    "BudgetExceeded",
    "EscalationManager",
    "EscalationOutcome",
    "EscalationStateError",
    "escalation_reason",
]
