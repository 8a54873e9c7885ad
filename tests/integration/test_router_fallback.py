"""Routing against real HTTP servers (the simulated Ollama, through the real `ollama`
client): a node's server stopped mid-test, breakers opening, a timeout falling down a tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.clock import FakeClock
from engine.inference.ollama_backend import OllamaBackend
from engine.routing.complexity import LlmRequest
from engine.routing.nodes import NodeConfig, RoutingConfig
from engine.routing.router import NoRoute, Router
from engine.sim.ollama_models import SimModelSpec
from engine.sim.ollama_server import SimulatedOllamaServer

SMALL = SimModelSpec(name="qwen2.5:7b", size_mb=4700, load_s=1.0, tokens_per_s=2000.0)
BIG = SimModelSpec(name="qwen2.5:14b", size_mb=9000, load_s=1.0, tokens_per_s=2000.0)


@pytest.fixture()
def servers() -> Iterator[dict[str, SimulatedOllamaServer]]:
    s = {"w1": SimulatedOllamaServer([SMALL], (1,)).start(), "w2": SimulatedOllamaServer([SMALL], (2,)).start(),
         "brain": SimulatedOllamaServer([BIG], (0, 3)).start()}
    yield s
    for srv in s.values():
        try:
            srv.stop()
        except Exception as exc:  # noqa: BLE001 - already stopped by the test
            print(f"stopping a server again: {type(exc).__name__}: {exc}")


def make_router(servers: dict[str, SimulatedOllamaServer], clock: FakeClock) -> Router:
    nodes = (NodeConfig("w1", servers["w1"].host, "ollama", SMALL.name, 0),
             NodeConfig("w2", servers["w2"].host, "ollama", SMALL.name, 0),
             NodeConfig("brain", servers["brain"].host, "ollama", BIG.name, 1, context_window=32768))
    cfg = RoutingConfig(nodes=nodes, breaker_failures=2, breaker_reset_s=30)
    return Router(cfg, {n.name: OllamaBackend(n.endpoint, timeout_s=5) for n in nodes}, clock=clock)


def test_stopped_node_falls_back_and_opens_its_breaker(servers: dict[str, SimulatedOllamaServer]) -> None:
    clock = FakeClock()
    router = make_router(servers, clock)
    router.check_health()
    assert all(s.healthy for s in router.states().values())
    first = router.execute(LlmRequest(prompt="list three colours"))
    assert first.node in ("w1", "w2") and first.result.eval_count
    gone, other = first.node, ({"w1", "w2"} - {first.node}).pop()

    servers[gone].stop()  # the node goes away mid-test: health checks open its breaker
    router.check_health()
    router.check_health()
    st = router.states()[gone]
    assert st.healthy is False
    assert st.breaker.state == "open" and st.breaker.next_probe_at == clock.now() + 30
    # with the breaker open, the dead node is not even tried
    r = router.execute(LlmRequest(prompt="list three colours"))
    assert r.node == other and r.tried == ()
    assert (gone, "breaker open") in r.decision.skipped

    servers[other].stop()  # stopped between health checks: the request itself finds out and falls back
    r = router.execute(LlmRequest(prompt="list three colours"))
    assert r.node == "brain", "the whole tier is gone: next tier up for simple work"
    assert r.tried and r.tried[0][0] == other

    servers["brain"].stop()
    with pytest.raises(NoRoute) as err:
        router.execute(LlmRequest(prompt="list three colours"))
    assert "brain" in str(err.value)

    states = router.check_health()
    assert states["brain"].healthy is False


def test_timeout_mid_answer_retries_on_the_next_tier_down(servers: dict[str, SimulatedOllamaServer]) -> None:
    clock = FakeClock()
    router = make_router(servers, clock)
    servers["brain"].specs[BIG.name].hang_next_load = 1
    servers["brain"].specs[BIG.name].hang_max_s = 10
    try:
        r = router.execute(LlmRequest(prompt="think hard", tier=1), timeout_s=0.5)
    finally:
        servers["brain"].release_hangs()
    assert r.node in ("w1", "w2")
    assert r.tried[0][0] == "brain" and r.tried[0][1].startswith("timeout")


def test_half_open_probe_closes_the_breaker_when_the_node_returns(servers: dict[str, SimulatedOllamaServer]) -> None:
    clock = FakeClock()
    router = make_router(servers, clock)
    router.open_breaker("w1")
    r = router.execute(LlmRequest(prompt="hi"))
    assert r.node == "w2"
    router.reset_breaker("w1")
    assert router.execute(LlmRequest(prompt="hi")).node == "w1"
