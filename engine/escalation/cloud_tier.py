"""The supervisor's side of routing and escalation.

Each tick it (cheaply) looks for failed LLM tasks that qualify for escalation and raises
a pending request, expires undecided ones, and health-checks the nodes on an interval.
Network work (health checks, the send after an approval) runs on one background thread
so a slow provider never stalls the tick. Approve/deny/breaker commands arrive through
the supervisor's command processor like every other operator command.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from engine.commands import Command, CommandKind
from engine.escalation.manager import DAY_S, BudgetExceeded, EscalationManager, EscalationStateError
from engine.escalation.providers import ProviderError
from engine.escalation.rule import escalation_env
from engine.escalation.service import build_manager, escalation_views, should_escalate
from engine.escalation.store import OPEN_STATES, Escalation, EscalationState
from engine.event_types import EventType, OnEvent
from engine.model import Task
from engine.paths import RigPaths
from engine.queue.awaiting import denial_reason
from engine.queue.protocol import AwaitingStore, FailedTaskSource
from engine.routing.breaker import BreakerState
from engine.routing.nodes import EscalationConfig, RoutingConfig
from engine.routing.router import Router
from engine.snapshot import EscalationView, NodeView, WaitingView
from engine.store.channels import AuditLog, EscalationRecords

PRUNE_INTERVAL_S = 60.0


def _last_activity(task: Task) -> float:
    return max([task.created_at] + [a.ended_at or a.started_at for a in task.attempts])


Resolve = Callable[[str, dict[str, Any], float], object]
"""Turn a failed task into a completed one with this result (the escalation's answer); truthy when done
(``TaskQueue.resolve_failed``)."""


class CloudTier:
    def __init__(self, paths: RigPaths, routing: RoutingConfig, escalation: EscalationConfig,
                 queue: FailedTaskSource, resolve: Resolve, *, awaiting: AwaitingStore | None = None,
                 router: Router | None = None,
                 manager: EscalationManager | None = None, outcome: Callable[[str, str], Any] | None = None,
                 on_event: OnEvent = lambda k, d: None,
                 scan_interval_s: float = 2.0, store: EscalationRecords | None = None,
                 audit: AuditLog | None = None) -> None:
        self.queue = queue
        self.resolve = resolve
        self.awaiting = awaiting  # where failed tasks wait for the decision; None: they stay in failed
        self.on_event = on_event
        self.routing = routing
        self.scan_interval_s = scan_interval_s
        self._outcome = outcome or (lambda kind, msg: (kind, msg))
        self.manager = manager or build_manager(paths, routing, escalation, on_answer=self._answered,
                                                on_denied=self._denied, on_retry_local=self._retry_local,
                                                on_event=on_event, on_failed=self._send_failed, store=store,
                                                audit=audit)
        if router is None:
            from engine.routing.backends import backend_for

            local = RoutingConfig(nodes=tuple(n for n in routing.nodes if not n.external),
                                  breaker_failures=routing.breaker_failures, breaker_reset_s=routing.breaker_reset_s,
                                  breaker_reset_max_s=routing.breaker_reset_max_s)
            router = Router(local, backend_for, on_event=on_event)
        self.router = router
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloud-tier")
        self._health: Future[Any] | None = None
        self._next_health = 0.0
        self._next_scan = 0.0
        self._next_prune = 0.0
        self._seen_failed: set[str] = set()
        self._lock = threading.Lock()
        self._sending: set[str] = set()  # escalation ids handed to the pool, not finished yet
        self._swept = False
        self._failed_stamp: int | None = None
        self._now = 0.0

    def worker_env(self) -> dict[str, str]:
        """What workers need to park a task that qualifies at its failure (engine/escalation/rule.py):
        nothing when no provider is configured (nothing could be escalated)."""
        return escalation_env(self.manager.config.after_local_failures if self.manager.providers else None)

    # ---- the tick ----
    def tick(self, now: float) -> None:
        self._now = now
        if now >= self._next_scan or self._failed_changed():  # a new failure is parked before the snapshot
            self._next_scan = now + self.scan_interval_s
            self._scan(now)
            self.manager.expire_due(now)
            self._send_leftovers(now)
        if now >= self._next_prune:  # reads every record: once a minute is plenty
            self._next_prune = now + PRUNE_INTERVAL_S
            self.manager.prune(now)
            self._reconcile(now)
        if self.router.nodes and now >= self._next_health and (self._health is None or self._health.done()):
            self._next_health = now + self.routing.health_interval_s
            self._health = self._pool.submit(self.router.check_health)

    def _failed_changed(self) -> bool:
        """One cheap look per tick: did the failed tasks change since the last look?"""
        stamp = self.queue.failed_stamp()
        changed = stamp is not None and stamp != self._failed_stamp
        self._failed_stamp = stamp
        return changed

    def _scan(self, now: float) -> None:
        if not self.manager.providers:
            return
        if not self._swept:
            self._swept = True
            self._sweep(now)
        self._raise_for_parked(now)
        for task in self.queue.recent("failed", 50):
            if task.task_id in self._seen_failed:
                continue
            self._seen_failed.add(task.task_id)
            if _last_activity(task) < now - self.manager.config.retention_days * DAY_S:
                continue  # its decided escalation may have been pruned: never ask again
            reason = should_escalate(task, self.manager.config)
            if reason is None or self.manager.store.for_task(task.task_id):
                continue
            try:
                e = self.manager.request(task, reason, now)
            except ProviderError as exc:
                self.on_event(EventType.ESCALATION_UNAVAILABLE, {"task_id": task.task_id, "error": str(exc)})
                continue
            self._park(task.task_id, e.escalation_id, now)
            self._reconcile(now, only=task.task_id)

    def _raise_for_parked(self, now: float) -> None:
        """Tasks their workers parked at their failure (``TaskQueue.fail(escalate=...)``) wait with
        no escalation yet: raise one and attach it. One this task had already (a retry after a
        deny) or a request the providers refuse sends it to failed/ with its own error."""
        awaiting = self._awaiting()
        if awaiting is None:
            return
        for task in awaiting.tasks():
            if (task.result or {}).get("awaiting_escalation"):
                continue
            why = should_escalate(task, self.manager.config) or "its worker asked for an escalation"
            earlier = self.manager.store.for_task(task.task_id)
            if earlier and not any(e.state in OPEN_STATES for e in earlier):  # decided before: a local retry
                awaiting.fail(task.task_id, task.error or "failed", now, event=EventType.TASK_FAILED)
                continue
            try:
                e = self.manager.request(task, why, now)  # an open one (raised before a crash) is reused
            except ProviderError as exc:
                self.on_event(EventType.ESCALATION_UNAVAILABLE, {"task_id": task.task_id, "error": str(exc)})
                awaiting.fail(task.task_id, f"{task.error or 'failed'} (escalation not possible: {exc})", now,
                              event=EventType.TASK_FAILED)
                continue
            attached = awaiting.attach(task.task_id, e.escalation_id, now)
            if not attached and awaiting.get(task.task_id) is not None:  # another rig's tier raised one too
                self.manager.deny(e.escalation_id, now, by="supervisor",
                                  reason=f"a duplicate: {attached.message} (raised by another supervisor)")
            self._seen_failed.add(task.task_id)

    # ---- the task's side: awaiting approval (engine/queue/awaiting.py) ----
    def _awaiting(self) -> AwaitingStore | None:
        return self.awaiting

    def _park(self, task_id: str, escalation_id: str, now: float) -> None:
        """Out of failed/ while the operator decides: not a failure, not retried by "retry all"."""
        awaiting = self._awaiting()
        if awaiting is not None:
            awaiting.park(task_id, escalation_id, now)

    def _sweep(self, now: float) -> None:
        """At start: finish moves a crash cut short, and park tasks whose open escalation was
        raised while they stayed in failed/ (by an older version)."""
        awaiting = self._awaiting()
        if awaiting is None:
            return
        awaiting.recover(now)
        for e in self.manager.store.all():
            if e.state in OPEN_STATES and awaiting.get(e.task_id) is None:
                awaiting.park(e.task_id, e.escalation_id, now)
        self._reconcile(now)

    def _reconcile(self, now: float, only: str | None = None) -> None:
        """A parked task whose escalation was decided while it was being parked (a CLI deny in
        that instant), or while no supervisor ran, gets that decision's outcome now."""
        awaiting = self._awaiting()
        if awaiting is None:
            return
        for task in awaiting.tasks():
            if only is not None and task.task_id != only:
                continue
            esc_id = str((task.result or {}).get("awaiting_escalation") or "")
            if not esc_id:
                continue  # parked by its worker, its escalation not raised yet (_raise_for_parked)
            e = self.manager.store.get(esc_id)
            if e is None:
                awaiting.fail(task.task_id, f"its escalation {esc_id or '?'} is gone (pruned or rejected)", now,
                              event=EventType.TASK_ESCALATION_FAILED)
            elif e.state == EscalationState.ANSWERED:
                self._answered(e)
            elif e.state == EscalationState.DENIED:
                self._denied(e)
            elif e.state == EscalationState.EXPIRED and self.manager.config.on_timeout == "retry_local":
                self._retry_local(e)
            elif e.state == EscalationState.EXPIRED:
                self._denied(replace(e, deny_reason="approval timed out", decided_by="expiry"))
            elif e.state == EscalationState.FAILED:
                self._send_failed(e)

    def _awaits_another(self, e: Escalation) -> bool:
        """The task waits for another escalation than ``e`` (``e`` was a duplicate): ``e``'s end is not its."""
        awaiting = self._awaiting()
        parked = awaiting.get(e.task_id) if awaiting is not None else None
        return parked is not None and (parked.result or {}).get("awaiting_escalation") not in (e.escalation_id, "", None)

    def _back_to_failed(self, e: Escalation, reason: str, event: EventType) -> None:
        awaiting = self._awaiting()
        if awaiting is not None and awaiting.get(e.task_id) is not None and not self._awaits_another(e):
            awaiting.fail(e.task_id, reason, self._now, event=event)

    # ---- outcomes ----
    def _answered(self, e: Escalation) -> None:
        result = {"text": e.answer, "escalation_id": e.escalation_id, "served_by": f"{e.provider} ({e.model})",
                  "tokens_in": e.tokens_in, "tokens_out": e.tokens_out, "cost_usd": e.cost_usd,
                  "advice_only": True}
        self.resolve(e.task_id, result, self._now)

    def _denied(self, e: Escalation) -> None:
        if self._awaits_another(e):
            return  # a duplicate raised by two supervisors at once, denied by the one that lost
        self._back_to_failed(e, denial_reason(e.decided_by, e.deny_reason), EventType.TASK_ESCALATION_DENIED)
        self.on_event(EventType.TASK_ESCALATION_DENIED, {"task_id": e.task_id, "reason": e.deny_reason})

    def _send_failed(self, e: Escalation) -> None:
        self._back_to_failed(e, f"escalation {e.escalation_id} failed: {e.error}", EventType.TASK_ESCALATION_FAILED)

    def _retry_local(self, e: Escalation) -> None:
        self._seen_failed.discard(e.task_id)
        awaiting = self._awaiting()
        if awaiting is not None and awaiting.get(e.task_id) is not None:
            awaiting.retry_local(e.task_id, self._now)
            return
        self.queue.retry(e.task_id, self._now)

    # ---- commands ----
    def register(self, processor: Any) -> None:
        processor.register(CommandKind.APPROVE, self._cmd_approve)
        processor.register(CommandKind.DENY, self._cmd_deny)
        processor.register(CommandKind.BREAKER_RESET, self._cmd_breaker)
        processor.register(CommandKind.BREAKER_OPEN, self._cmd_breaker)

    def _cmd_approve(self, cmd: Command, now: float) -> Any:
        """The decision is made here, in the tick, under the escalation's lock: the ack says who
        won. Only the network call runs on the background thread."""
        by = cmd.source or "operator"
        try:
            e = self.manager.decide_approve(cmd.target or "", now, by,
                                            override_budget=bool(cmd.args.get("override_budget")))
        except BudgetExceeded as exc:
            return self._outcome("refused", f"over budget: {exc}")
        except (KeyError, EscalationStateError) as exc:
            return self._outcome("refused", str(exc).strip("'\""))
        self._submit_send(e.escalation_id, now)
        return self._outcome("ok", f"approved {e.escalation_id} by {by}; sending to {e.provider} ({e.model})")

    def _submit_send(self, escalation_id: str, now: float) -> None:
        with self._lock:
            if escalation_id in self._sending:
                return
            self._sending.add(escalation_id)

        def send() -> None:
            try:
                self.manager.send_approved(escalation_id, now, by="supervisor")
            except Exception as exc:  # noqa: BLE001 - a send problem is an event, never a dead pool thread
                self.on_event(EventType.ESCALATION_SEND_FAILED, {"escalation_id": escalation_id, "error": str(exc)})
            finally:
                with self._lock:
                    self._sending.discard(escalation_id)

        self._pool.submit(send)

    def _send_leftovers(self, now: float) -> None:
        """Approved while no supervisor ran (CLI --leave-for-supervisor, or a process that
        died between decision and send): sent now, exactly once (the send is claimed)."""
        self.manager.recover_stranded(now)
        for e in self.manager.awaiting_send():
            self._submit_send(e.escalation_id, now)

    def _cmd_deny(self, cmd: Command, now: float) -> Any:
        reason = str(cmd.args.get("reason") or "").strip()
        if not reason:
            return self._outcome("refused", "a denial needs a reason")
        try:
            out = self.manager.deny(cmd.target or "", now, by=cmd.source or "operator", reason=reason)
        except (KeyError, EscalationStateError) as exc:
            return self._outcome("refused", str(exc).strip("'\""))
        return self._outcome("ok", out.message)

    def _cmd_breaker(self, cmd: Command, now: float) -> Any:
        try:
            if cmd.kind is CommandKind.BREAKER_RESET:
                self.router.reset_breaker(cmd.target or "")
            else:
                self.router.open_breaker(cmd.target or "")
        except KeyError as exc:
            return self._outcome("refused", str(exc).strip("'\""))
        return self._outcome("ok", f"breaker {cmd.target}: {'reset' if cmd.kind is CommandKind.BREAKER_RESET else 'forced open'}")

    # ---- views ----
    def node_views(self) -> tuple[NodeView, ...]:
        states = self.router.states()
        out = []
        for n in self.routing.nodes:
            st = states.get(n.name)
            out.append(NodeView(
                name=n.name, tier=n.tier, backend=n.backend, endpoint=n.endpoint, model=n.model,
                healthy=None if st is None else st.healthy, latency_ms=None if st is None else st.latency_ms,
                load=0 if st is None else st.in_flight, breaker=BreakerState.CLOSED if st is None else st.breaker.state,
                breaker_failures=0 if st is None else st.breaker.failures,
                next_probe_at=None if st is None else st.breaker.next_probe_at,
                context_window=n.context_window, max_concurrency=n.max_concurrency, external=n.external))
        return tuple(out)

    def escalation_views(self, now: float) -> tuple[EscalationView, ...]:
        return escalation_views(self.manager, now)

    def snapshot_extras(self, now: float) -> dict[str, Any]:
        """Nodes, escalations, and tasks waiting on an operator's decision for the snapshot."""
        escalations = self.escalation_views(now)
        waiting = tuple(WaitingView(task_id=e.task_id, name=e.task_id, task_class="llm", priority=0,
                                    waiting_since=e.created_at,
                                    reason=f"awaiting approval ({e.escalation_id}, ~${e.est_cost_usd:.4f})")
                        for e in escalations if e.state == EscalationState.PENDING)
        return {"nodes": self.node_views(), "escalations": escalations, "waiting": waiting}

    def awaiting_approval(self) -> Sequence[str]:
        return [e.task_id for e in self.manager.pending()]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
