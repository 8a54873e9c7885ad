"""Half-open breakers against real HTTP servers (the simulated Ollama, through the real
`ollama` client): one probe at a time; a second request arriving while the probe streams
goes to the next tier; a probe its caller abandons frees the slot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.escalation.cloud_tier import CloudTier
from engine.inference.ollama_backend import OllamaBackend
from engine.model import Task
from engine.paths import RigPaths
from engine.routing.complexity import LlmRequest
from engine.routing.nodes import EscalationConfig, NodeConfig, RoutingConfig
from engine.routing.router import Router
from engine.sim.ollama_models import SimModelSpec
from engine.sim.ollama_server import SimulatedOllamaServer

SMALL = SimModelSpec(name="qwen2.5:7b", size_mb=4700, load_s=1.0, tokens_per_s=2000.0)
BIG = SimModelSpec(name="qwen2.5:14b", size_mb=9000, load_s=1.0, tokens_per_s=2000.0)
RESET_S = 30.0


@pytest.fixture()
def servers() -> Iterator[dict[str, SimulatedOllamaServer]]:
    s = {"w1": SimulatedOllamaServer([SimModelSpec(**SMALL.__dict__)], (1,)).start(),
         "brain": SimulatedOllamaServer([SimModelSpec(**BIG.__dict__)], (0, 3)).start()}
    yield s
    for srv in s.values():
        srv.stop()


def half_open_router(servers: dict[str, SimulatedOllamaServer], clock: FakeClock) -> Router:
    """w1 (tier 0) fails twice (the simulated 'llama runner' start failure), opening its
    breaker; the clock then passes the wait, so the next request to w1 is the probe."""
    nodes = (NodeConfig("w1", servers["w1"].host, "ollama", SMALL.name, 0),
             NodeConfig("brain", servers["brain"].host, "ollama", BIG.name, 1, context_window=32768))
    router = Router(RoutingConfig(nodes=nodes, breaker_failures=2, breaker_reset_s=RESET_S),
                    {n.name: OllamaBackend(n.endpoint, timeout_s=5) for n in nodes}, clock=clock)
    spec = servers["w1"].specs[SMALL.name]
    spec.hang_next_load, spec.hang_max_s = 2, 0.05
    for _ in range(2):
        assert router.execute(LlmRequest(prompt="hi")).node == "brain"
    assert router.states()["w1"].breaker.state == "open"
    clock.advance(RESET_S)
    return router


class NoFailedTasks:
    def recent(self, state: str, limit: int) -> list[Task]:
        return []

    def get(self, task_id: str) -> Task | None:
        return None

    def retry(self, task_id: str, now: float) -> bool:
        return False

    def failed_stamp(self) -> int | None:
        return None


def test_a_second_request_during_the_probe_goes_to_the_next_tier(
        tmp_path: Path, servers: dict[str, SimulatedOllamaServer]) -> None:
    clock = FakeClock()
    router = half_open_router(servers, clock)
    tier = CloudTier(RigPaths(tmp_path).ensure(), router.config, EscalationConfig(), NoFailedTasks(),
                     lambda task_id, result, now: True, router=router)
    during: list[object] = []

    def second_request_while_probing(_chunk: str) -> None:
        if not during:
            during.append(next(v for v in tier.node_views() if v.name == "w1"))  # what the snapshot shows
            during.append(router.execute(LlmRequest(prompt="hi")))

    probe = router.execute(LlmRequest(prompt="hi"), on_chunk=second_request_while_probing)
    assert probe.node == "w1"
    view, second = during
    assert view.breaker == "half_open" and view.load == 1  # type: ignore[attr-defined]
    assert second.node == "brain" and second.tried == ()  # type: ignore[attr-defined]
    assert ("w1", "breaker half_open (probe in flight)") in second.decision.skipped  # type: ignore[attr-defined]
    assert router.states()["w1"].breaker.state == "closed", "the probe succeeded"
    assert router.execute(LlmRequest(prompt="hi")).node == "w1"
    assert next(v for v in tier.node_views() if v.name == "w1").breaker == "closed"
    tier.close()


def test_a_probe_its_caller_abandons_frees_the_slot(servers: dict[str, SimulatedOllamaServer]) -> None:
    clock = FakeClock()
    router = half_open_router(servers, clock)

    def cancel(_chunk: str) -> None:
        raise KeyboardInterrupt("task cancelled")

    with pytest.raises(KeyboardInterrupt):
        router.execute(LlmRequest(prompt="hi"), on_chunk=cancel)
    st = router.states()["w1"]
    assert st.breaker.state == "half_open" and st.in_flight == 0
    assert router.execute(LlmRequest(prompt="hi")).node == "w1", "the next request is the new probe"
