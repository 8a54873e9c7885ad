"""The live output of a routed llm task restarts on the node the router fell back to: the
failed node's partial text is dropped and the fallback is marked (real HTTP: simulated
Ollama servers through the real client)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.handlers.base import TaskContext
from engine.handlers.llm import LlmHandler
from engine.inference.ollama_backend import OllamaBackend
from engine.model import Task, TaskClass, TaskType
from engine.routing.nodes import NodeConfig, RoutingConfig
from engine.routing.routed_backend import RoutedBackend
from engine.routing.router import Router
from engine.sim.ollama_models import SimModelSpec
from engine.sim.ollama_server import SimulatedOllamaServer


@pytest.fixture()
def servers() -> Iterator[dict[str, SimulatedOllamaServer]]:
    s = {"w1": SimulatedOllamaServer([SimModelSpec(name="qwen2.5:7b", load_s=0.1, tokens_per_s=2000.0,
                                                   fail_mid_stream=1)], (1,)).start(),
         "brain": SimulatedOllamaServer([SimModelSpec(name="qwen2.5:14b", size_mb=9000, load_s=0.1,
                                                      tokens_per_s=2000.0)], (0, 3)).start()}
    yield s
    for srv in s.values():
        srv.stop()


def test_after_a_fallback_the_live_output_restarts_from_the_new_node(
        tmp_path: Path, servers: dict[str, SimulatedOllamaServer]) -> None:
    nodes = (NodeConfig("w1", servers["w1"].host, "ollama", "qwen2.5:7b", 0),
             NodeConfig("brain", servers["brain"].host, "ollama", "qwen2.5:14b", 1, context_window=32768))
    router = Router(RoutingConfig(nodes=nodes), {n.name: OllamaBackend(n.endpoint, timeout_s=5) for n in nodes})
    reports: list[str] = []
    ctx = TaskContext(worker_id="gateway", gpu_ids=(), env={}, workdir=str(tmp_path), deadline=time.time() + 30,
                      report_progress=lambda text, tps: reports.append(text or ""),
                      extras={"backend": RoutedBackend(router)})
    task = Task(task_id="t", name="q", type=TaskType.LLM, task_class=TaskClass.LLM, model="any",
                params={"prompt": "list three colours", "options": {"num_predict": 40}})

    out = LlmHandler().run(task, ctx)

    assert out.result["routed_to"] == "brain"
    answer = out.output_tail or ""
    marked = [i for i, r in enumerate(reports) if r.startswith("[fell back from w1: error:")]
    assert marked, f"the fallback is marked in the live output: {reports[:3]}"
    first = marked[0]
    assert first > 0 and reports[0] and not reports[0].startswith("["), "w1's partial text was live before"
    marker = reports[first].split("\n", 1)[0] + "\n"
    for live in reports[first:-1]:  # from the fallback on: the marker, then only the new node's text
        assert live.startswith(marker) and answer.startswith(live[len(marker):])
    assert reports[-1] == answer
