"""A worker group with ``backend = "router"`` routes each llm task across the nodes the
supervisor publishes (real HTTP: simulated Ollama servers through the real client)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.escalation.service import should_escalate
from engine.handlers.base import TaskContext, TaskFailure
from engine.handlers.llm import LlmHandler
from engine.model import Task, TaskClass, TaskType
from engine.paths import RigPaths
from engine.routing.nodes import EscalationConfig
from engine.sim.ollama_models import SimModelSpec
from engine.sim.ollama_server import SimulatedOllamaServer
from engine.snapshot import SNAPSHOT_VERSION, NodeView, Snapshot, write_snapshot

SMALL = SimModelSpec(name="qwen2.5:7b", size_mb=4700, load_s=0.5, tokens_per_s=2000.0)
BIG = SimModelSpec(name="qwen2.5:14b", size_mb=9000, load_s=0.5, tokens_per_s=2000.0)


@pytest.fixture()
def servers() -> Iterator[dict[str, SimulatedOllamaServer]]:
    s = {"gpu1": SimulatedOllamaServer([SMALL], (1,)).start(), "brain": SimulatedOllamaServer([BIG], (0, 3)).start()}
    yield s
    for srv in s.values():
        try:
            srv.stop()
        except Exception as exc:  # noqa: BLE001 - stopped by the test
            print(f"stopping a server again: {type(exc).__name__}: {exc}")


def publish(root: Path, servers: dict[str, SimulatedOllamaServer], external: bool = True) -> None:
    nodes = (NodeView("gpu1", 0, "ollama", servers["gpu1"].host, SMALL.name, True, 1.0, 0, "closed"),
             NodeView("brain", 1, "ollama", servers["brain"].host, BIG.name, True, 1.0, 0, "closed",
                      context_window=32768),
             NodeView("claude", 2, "anthropic", "https://api.example", "claude", None, None, 0, "closed",
                      context_window=200000, external=True))
    snap = Snapshot(version=SNAPSHOT_VERSION, seq=1, taken_at=time.time(), rig="r", simulated=True,
                    telemetry_status="sim", nodes=nodes if external else nodes[:2])
    RigPaths(root).ensure()
    write_snapshot(RigPaths(root).snapshot, snap)


def run(root: Path, handler: LlmHandler, **task_kw: object) -> dict[str, object]:
    task_kw.setdefault("params", {"prompt": "list three colours"})
    task = Task(task_id="t", name="q", type=TaskType.LLM, task_class=TaskClass.LLM, model="any",
                **task_kw)  # type: ignore[arg-type]
    ctx = TaskContext(worker_id="gateway", gpu_ids=(), env={}, workdir=str(root), deadline=time.time() + 30,
                      extras={"backend": "router", "root": str(root)})
    return handler.run(task, ctx).result


def test_tiers_route_to_their_nodes_and_fall_back(tmp_path: Path, servers: dict[str, SimulatedOllamaServer]) -> None:
    publish(tmp_path, servers)
    handler = LlmHandler()
    simple = run(tmp_path, handler)
    assert simple["routed_to"] == "gpu1" and simple["model"] == SMALL.name
    hard = run(tmp_path, handler, tier=1)
    assert hard["routed_to"] == "brain" and hard["model"] == BIG.name
    servers["brain"].stop()
    fallback = run(tmp_path, handler, tier=1)
    assert fallback["routed_to"] == "gpu1", "tier 1 down: the next tier down answers"


def test_nothing_local_left_fails_towards_escalation(tmp_path: Path, servers: dict[str, SimulatedOllamaServer]) -> None:
    publish(tmp_path, servers)
    handler = LlmHandler()
    with pytest.raises(TaskFailure) as err:
        run(tmp_path, handler, params={"prompt": "x " * 150_000})  # fits only the cloud's window
    assert not err.value.retryable and "no local tier" in str(err.value)
    failed = Task(task_id="t", name="q", type=TaskType.LLM, task_class=TaskClass.LLM, error=str(err.value))
    assert should_escalate(failed, EscalationConfig()) == "no local tier can take it"


def test_a_prompt_that_fits_no_node_fails_once_with_the_numbers(tmp_path: Path,
                                                                 servers: dict[str, SimulatedOllamaServer]) -> None:
    publish(tmp_path, servers, external=False)
    with pytest.raises(TaskFailure) as err:
        run(tmp_path, LlmHandler(), params={"prompt": "x " * 150_000})
    assert not err.value.retryable and "fits no node" in str(err.value) and "32768 (brain)" in str(err.value)
