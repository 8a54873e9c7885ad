"""Routing decision tables: complexity -> tier order, health, breakers, context windows."""

from __future__ import annotations

import pytest

from engine.routing import breaker as br
from engine.routing.complexity import COMPLEX, MEDIUM, SIMPLE, HeuristicClassifier, LlmRequest
from engine.routing.nodes import NodeConfig
from engine.routing.router import NodeState, plan_route

NOW = 1000.0
CLS = HeuristicClassifier(long_prompt_tokens=2000, very_long_prompt_tokens=6000)


def node(name: str, tier: int, **kw: object) -> NodeConfig:
    return NodeConfig(name=name, endpoint=f"http://127.0.0.1:1/{name}", backend="ollama", model=f"m{tier}",
                      tier=tier, **kw)  # type: ignore[arg-type]


NODES = [node("w1", 0), node("w2", 0), node("brain", 1, context_window=32768),
         node("big", 2, context_window=65536), node("cloud", 3, external=True, context_window=200000)]


@pytest.mark.parametrize("prompt, complexity, first_tier", [
    ("extract the date from this line", SIMPLE, 0),
    ("summarise " + "word " * 2500, MEDIUM, 1),
    ("compare these designs and analyse the trade-offs, then plan a refactor", COMPLEX, 2),
    ("x " * 13000, COMPLEX, 2),
])
def test_complexity_picks_the_tier_order(prompt: str, complexity: int, first_tier: int) -> None:
    d = plan_route(LlmRequest(prompt=prompt), NODES, {}, CLS, NOW)
    assert d.complexity == complexity
    tiers = [next(n.tier for n in NODES if n.name == c) for c in d.candidates]
    assert tiers[0] == first_tier
    assert "cloud" not in d.candidates, "an external node is never routed to without approval"


def test_fallback_orders_follow_the_design_notes() -> None:
    simple = plan_route(LlmRequest(prompt="list three colours"), NODES, {}, CLS, NOW)
    assert list(simple.candidates) == ["w1", "w2", "brain", "big"]
    complex_ = plan_route(LlmRequest(prompt="q", tier=2), NODES, {}, CLS, NOW)
    assert complex_.candidates == ("big", "brain", "w1", "w2")
    medium = plan_route(LlmRequest(prompt="q", tier=1), NODES, {}, CLS, NOW)
    assert medium.candidates == ("brain", "big", "w1", "w2")


def test_least_loaded_then_fastest_within_a_tier() -> None:
    states = {"w1": NodeState(in_flight=1, latency_ms=5), "w2": NodeState(in_flight=0, latency_ms=50)}
    d = plan_route(LlmRequest(prompt="hi"), [node("w1", 0, max_concurrency=2), node("w2", 0, max_concurrency=2)],
                   states, CLS, NOW)
    assert d.candidates == ("w2", "w1")
    states = {"w1": NodeState(latency_ms=5), "w2": NodeState(latency_ms=50)}
    d = plan_route(LlmRequest(prompt="hi"), [node("w1", 0), node("w2", 0)], states, CLS, NOW)
    assert d.candidates == ("w1", "w2")


def test_open_breaker_and_unhealthy_nodes_are_skipped_with_reasons() -> None:
    states = {"w1": NodeState(breaker=br.Breaker(state=br.OPEN, next_probe_at=NOW + 30)),
              "w2": NodeState(healthy=False, detail="connection refused")}
    d = plan_route(LlmRequest(prompt="hi"), NODES, states, CLS, NOW)
    assert d.candidates[0] == "brain"
    assert ("w1", "breaker open") in d.skipped
    assert ("w2", "unhealthy: connection refused") in d.skipped


def test_open_breaker_past_its_wait_allows_a_probe() -> None:
    states = {"w1": NodeState(breaker=br.Breaker(state=br.OPEN, next_probe_at=NOW - 1))}
    d = plan_route(LlmRequest(prompt="hi"), [node("w1", 0)], states, CLS, NOW)
    assert d.candidates == ("w1",)


def test_half_open_breaker_with_its_probe_in_flight_is_skipped() -> None:
    probing = br.Breaker(state=br.HALF_OPEN, failures=3, opened_count=1, next_probe_at=NOW - 1,
                         probe_until=NOW + 60)
    d = plan_route(LlmRequest(prompt="hi"), NODES, {"w1": NodeState(breaker=probing)}, CLS, NOW)
    assert d.candidates[0] == "w2"
    assert ("w1", "breaker half_open (probe in flight)") in d.skipped


def test_prompt_too_long_for_every_node_fails_before_sending_with_the_numbers() -> None:
    d = plan_route(LlmRequest(prompt="y " * 400_000), NODES, {}, CLS, NOW)
    assert d.candidates == ()
    assert d.error is not None
    assert "fits no node" in d.error and "200000 (cloud)" in d.error


def test_prompt_too_long_for_local_nodes_needs_escalation() -> None:
    d = plan_route(LlmRequest(prompt="y " * 160_000), NODES, {}, CLS, NOW)
    assert d.candidates == ()
    assert d.needs_escalation and "no local node" in d.needs_escalation
    assert any("context window" in why for _, why in d.skipped)


def test_requires_external_goes_to_escalation_only() -> None:
    d = plan_route(LlmRequest(prompt="hi", requires_external=True), NODES, {}, CLS, NOW)
    assert d.candidates == () and d.needs_escalation
    d2 = plan_route(LlmRequest(prompt="hi", requires_external=True), NODES[:4], {}, CLS, NOW)
    assert d2.error and "no external node" in d2.error


def test_all_local_breakers_open_needs_escalation() -> None:
    opened = NodeState(breaker=br.Breaker(state=br.OPEN, next_probe_at=NOW + 60))
    states = {n.name: opened for n in NODES if not n.external}
    d = plan_route(LlmRequest(prompt="hi"), NODES, states, CLS, NOW)
    assert d.candidates == () and d.needs_escalation
