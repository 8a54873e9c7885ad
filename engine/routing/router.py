"""The router: pick a node for an LLM request, fall back down the tiers, keep breakers.

``plan_route`` is pure (request, nodes, their runtime states, now) -> decision, so the
decision tables are tested without servers. ``Router`` carries decisions out against
real backends and records health, latency, load and breaker transitions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from engine.clock import Clock, SystemClock
from engine.event_types import EventType, OnEvent
from engine.inference.protocol import BackendError, BackendTimeout, ChunkCallback, GenerationResult, LlmBackend
from engine.routing import breaker as br
from engine.routing.complexity import FALLBACK_ORDER, NAMES, ComplexityClassifier, HeuristicClassifier, LlmRequest
from engine.routing.nodes import NodeConfig, RoutingConfig

PROBE_MARGIN_S = 30.0  # a half-open probe's slot outlives its request timeout by this much


@dataclass(frozen=True)
class NodeState:
    healthy: bool | None = None  # None: not checked yet
    latency_ms: float | None = None
    in_flight: int = 0
    breaker: br.Breaker = field(default_factory=br.Breaker)
    last_check_at: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class RouteDecision:
    complexity: int
    reasons: tuple[str, ...]
    candidates: tuple[str, ...]  # node names, best first, local nodes only
    skipped: tuple[tuple[str, str], ...] = ()  # (node, why not)
    needs_escalation: str | None = None  # reason, when only an external node could answer
    error: str | None = None  # the request cannot be served anywhere (e.g. too long for every node)


def _ewma(old: float | None, new: float, weight: float = 0.2) -> float:
    return new if old is None else old * (1 - weight) + new * weight


class NoRoute(RuntimeError):
    def __init__(self, decision: RouteDecision, tried: Sequence[tuple[str, str]] = ()) -> None:
        self.decision = decision
        self.tried = list(tried)
        msg = decision.error or decision.needs_escalation or "no healthy node can take this request"
        if tried:
            msg += "; tried " + "; ".join(f"{n}: {e}" for n, e in tried)
        super().__init__(msg)


def _tier_order(complexity: int, tiers: Sequence[int]) -> list[int]:
    preferred = [t for t in FALLBACK_ORDER.get(complexity, (0, 1, 2)) if t in tiers]
    return preferred + sorted(t for t in set(tiers) if t not in preferred)


def plan_route(request: LlmRequest, nodes: Sequence[NodeConfig], states: Mapping[str, NodeState],
               classifier: ComplexityClassifier, now: float) -> RouteDecision:
    assessment = classifier.classify(request)
    need = request.input_tokens + request.max_output_tokens
    fitting = [n for n in nodes if n.context_window >= need]
    if not fitting:
        widest = max(nodes, key=lambda n: n.context_window, default=None)
        where = f"the largest context window is {widest.context_window} ({widest.name})" if widest else "no nodes are configured"
        return RouteDecision(assessment.complexity, assessment.reasons, (), error=(
            f"prompt of about {request.input_tokens} tokens plus {request.max_output_tokens} for the answer "
            f"({need}) fits no node: {where}"))
    skipped: list[tuple[str, str]] = [(n.name, f"context window {n.context_window} < {need} tokens")
                                      for n in nodes if n.context_window < need]
    local = [n for n in fitting if not n.external]
    external = [n for n in fitting if n.external]
    if request.requires_external:
        if not external:
            return RouteDecision(assessment.complexity, assessment.reasons, (), tuple(skipped),
                                 error="task requires an external model but no external node is configured")
        return RouteDecision(assessment.complexity, assessment.reasons, (), tuple(skipped),
                             needs_escalation="task is marked requires_external")

    order: list[str] = []
    tiers = _tier_order(assessment.complexity, [n.tier for n in local])
    for tier in tiers:
        usable = []
        for n in (n for n in local if n.tier == tier):
            st = states.get(n.name, NodeState())
            if not br.allows(st.breaker, now):
                probing = " (probe in flight)" if br.probe_in_flight(st.breaker, now) else ""
                skipped.append((n.name, f"breaker {st.breaker.state}{probing}"))
            elif st.healthy is False and st.breaker.state == br.CLOSED:
                skipped.append((n.name, f"unhealthy: {st.detail or 'health check failed'}"))
            elif st.in_flight >= n.max_concurrency:
                usable.append((1, st.in_flight / max(1, n.max_concurrency), st.latency_ms or 0.0, n.name))
            else:
                usable.append((0, st.in_flight / max(1, n.max_concurrency), st.latency_ms or 0.0, n.name))
        order.extend(name for *_, name in sorted(usable))
    escalation = None
    if not order and external:
        escalation = "no local node can take it (" + ("; ".join(f"{n}: {w}" for n, w in skipped) or "none configured") + ")"
    return RouteDecision(assessment.complexity, assessment.reasons, tuple(order), tuple(skipped),
                         needs_escalation=escalation)


@dataclass(frozen=True)
class RoutedResult:
    result: GenerationResult
    node: str
    decision: RouteDecision
    tried: tuple[tuple[str, str], ...] = ()


BackendFactory = Callable[[NodeConfig], LlmBackend]
FallbackCallback = Callable[[str, str], None]


class Router:
    def __init__(self, config: RoutingConfig, backends: Mapping[str, LlmBackend] | BackendFactory, *,
                 clock: Clock | None = None, classifier: ComplexityClassifier | None = None,
                 on_event: OnEvent | None = None) -> None:
        self.config = config
        self.nodes = {n.name: n for n in config.nodes}
        if callable(backends) and not isinstance(backends, Mapping):
            self.backends = {n.name: backends(n) for n in config.nodes if not n.external}
        else:
            self.backends = dict(backends)
        self.clock = clock or SystemClock()
        self.classifier = classifier or HeuristicClassifier(config.long_prompt_tokens,
                                                            config.very_long_prompt_tokens)
        self.policy = br.BreakerPolicy(config.breaker_failures, config.breaker_reset_s, config.breaker_reset_max_s)
        self._states: dict[str, NodeState] = {n: NodeState() for n in self.nodes}
        self._lock = threading.Lock()
        self._on_event = on_event or (lambda kind, data: None)

    # ---- state ----
    def states(self) -> dict[str, NodeState]:
        with self._lock:
            return dict(self._states)

    def _update(self, name: str, fn: Callable[[NodeState], NodeState]) -> NodeState:
        with self._lock:
            old = self._states[name]
            new = fn(old)
            self._states[name] = new
        if old.breaker.state != new.breaker.state:
            self._on_event(EventType.BREAKER_CHANGED, {"node": name, "from": old.breaker.state, "to": new.breaker.state,
                                               "error": new.breaker.last_error})
        return new

    def _admit(self, name: str, now: float, request_timeout_s: float) -> bool:
        """Take the node for one request, atomically: in half-open only one caller wins the probe.
        The probe slot lasts the request's own timeout plus a margin, then frees itself."""
        admitted = False

        def take(s: NodeState) -> NodeState:
            nonlocal admitted
            b, admitted = br.try_acquire(s.breaker, now, request_timeout_s + PROBE_MARGIN_S)
            return replace(s, breaker=b, in_flight=s.in_flight + 1) if admitted else s

        self._update(name, take)
        return admitted

    def decide(self, request: LlmRequest) -> RouteDecision:
        return plan_route(request, list(self.nodes.values()), self.states(), self.classifier, self.clock.now())

    # ---- requests ----
    def execute(self, request: LlmRequest, *, on_chunk: ChunkCallback | None = None,
                timeout_s: float | None = None, on_fallback: FallbackCallback | None = None) -> RoutedResult:
        """``on_fallback(failed_node, error)`` runs before the next node starts after a failure,
        so a caller showing streamed text can drop the failed node's partial output."""
        decision = self.decide(request)
        if decision.error or not decision.candidates:
            raise NoRoute(decision)
        tried: list[tuple[str, str]] = []
        failed: tuple[str, str] | None = None  # the node that last failed mid-request, and why
        remaining = list(decision.candidates)
        while remaining:
            name = remaining.pop(0)
            node = self.nodes[name]
            now = self.clock.now()
            if not self._admit(name, now, timeout_s or self.config.request_timeout_s):
                # another request took the half-open probe (or it opened) since the decision
                st = self.states()[name]
                probing = " (probe in flight)" if br.probe_in_flight(st.breaker, now) else ""
                tried.append((name, f"breaker {st.breaker.state}{probing}"))
                continue
            if failed is not None and on_fallback is not None:
                on_fallback(*failed)
            failed = None
            started = time.perf_counter()
            try:
                result = self.backends[name].generate(
                    node.model, request.prompt, system=request.system, on_chunk=on_chunk,
                    options={"num_predict": request.max_output_tokens},
                    timeout_s=timeout_s or self.config.request_timeout_s)
            except BackendError as exc:
                err = f"{'timeout' if isinstance(exc, BackendTimeout) else 'error'}: {exc}"
                now = self.clock.now()
                self._update(name, partial(_after_failure, now=now, policy=self.policy, error=err))
                tried.append((name, err))
                failed = (name, err)
                self._on_event(EventType.ROUTE_FAILED, {"node": name, "error": err, "task_id": request.task_id})
                if isinstance(exc, BackendTimeout):
                    # a timeout mid-answer retries on the next tier DOWN when there is one
                    lower = [r for r in remaining if self.nodes[r].tier < node.tier]
                    remaining = lower + [r for r in remaining if r not in lower]
                continue
            except BaseException:  # the caller stopped it (a cancelled task's on_chunk): not the node's fault
                self._update(name, lambda s: replace(s, in_flight=max(0, s.in_flight - 1),
                                                     breaker=br.release_probe(s.breaker)))
                raise
            latency = (time.perf_counter() - started) * 1000
            now = self.clock.now()
            self._update(name, partial(_after_success, now=now, latency_ms=latency))
            return RoutedResult(result, name, decision, tuple(tried))
        raise NoRoute(decision, tried)

    # ---- health ----
    def check_health(self, names: Sequence[str] | None = None) -> dict[str, NodeState]:
        for name in names or list(self.backends):
            backend = self.backends.get(name)
            if backend is None:
                continue
            try:
                h = backend.health()
                ok, latency, detail, starting = h.ok, h.latency_ms, h.detail, h.starting
            except Exception as exc:  # noqa: BLE001 - a health check must never take the router down
                ok, latency, detail, starting = False, None, f"{type(exc).__name__}: {exc}", False
            self._update(name, partial(_after_health, ok=ok, latency_ms=latency, detail=detail, starting=starting,
                                       now=self.clock.now(), policy=self.policy))
        return self.states()

    # ---- operator commands ----
    def reset_breaker(self, name: str) -> None:
        self._require(name)
        self._update(name, lambda s: replace(s, breaker=br.reset(s.breaker)))

    def open_breaker(self, name: str) -> None:
        self._require(name)
        now = self.clock.now()
        self._update(name, lambda s: replace(s, breaker=br.force_open(s.breaker, now)))

    def _require(self, name: str) -> None:
        if name not in self.nodes:
            raise KeyError(f"no node named {name!r} (known: {', '.join(sorted(self.nodes)) or 'none'})")

    def describe(self, decision: RouteDecision) -> str:
        head = f"{NAMES.get(decision.complexity, decision.complexity)} ({'; '.join(decision.reasons)})"
        if decision.error:
            return f"{head}: {decision.error}"
        if decision.needs_escalation:
            return f"{head}: escalation needed: {decision.needs_escalation}"
        return f"{head}: try {' -> '.join(decision.candidates)}"


# The state changes _update applies (functions of the old state; partial binds this call's values).
def _after_failure(s: NodeState, *, now: float, policy: br.BreakerPolicy, error: str) -> NodeState:
    return replace(s, in_flight=max(0, s.in_flight - 1), breaker=br.on_failure(s.breaker, now, policy, error))


def _after_success(s: NodeState, *, now: float, latency_ms: float) -> NodeState:
    return replace(s, in_flight=max(0, s.in_flight - 1), breaker=br.on_success(s.breaker, now), healthy=True,
                   latency_ms=_ewma(s.latency_ms, latency_ms))


def _after_health(s: NodeState, *, ok: bool, latency_ms: float | None, detail: str, starting: bool,
                  now: float, policy: br.BreakerPolicy) -> NodeState:
    b = s.breaker
    if ok:
        b = br.on_success(br.before_request(b, now), now) if b.state != br.CLOSED else b
    elif not starting:
        b = br.on_failure(br.before_request(b, now), now, policy, detail) if br.allows(b, now) else b
    return replace(s, healthy=ok or (None if starting else False), latency_ms=latency_ms, last_check_at=now,
                   breaker=b, detail=detail)
