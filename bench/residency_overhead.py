"""Prints what galaxy's Ollama path adds to an LLM task, and what a residency switch costs,
against the simulated Ollama on loopback (no GPU needed).

- per task: the `ollama` client called directly vs ResidencyManager.prepare + LlmHandler.run
  + finished (one /api/ps check before, one cross-check after);
- per switch: LLM -> script (unload, wait for VRAM through the probe) and back (reload),
  with load times scaled to zero so the figure is galaxy's own work.

    .venv/bin/python bench/residency_overhead.py [--tasks 40] [--tokens-per-s 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ollama

from engine.clock import SystemClock
from engine.handlers.base import HandlerResult, TaskContext
from engine.handlers.llm import LlmHandler
from engine.inference.ollama_backend import OllamaBackend
from engine.model import Task
from engine.residency.manager import ResidencyManager
from engine.sim import InMemoryVramLedger, SimModelSpec, SimulatedOllamaServer

MODEL = "qwen2.5:7b"


class NoopScript:
    model: str | None = None

    @property
    def resident_model(self) -> str | None:
        return self.model

    def release(self) -> None:
        self.model = None

    def run(self, task: Task, ctx: TaskContext) -> HandlerResult:
        self.model = "tiny.en"
        return HandlerResult(result={})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--tokens-per-s", type=float, default=400.0, help="real streaming rate of the simulated model")
    args = ap.parse_args()
    ledger = InMemoryVramLedger(1)
    spec = SimModelSpec(MODEL, load_s=0, tokens_per_s=args.tokens_per_s, prompt_tokens_per_s=1e9)
    with SimulatedOllamaServer([spec], ledger=ledger, time_scale=1.0) as server:
        client = ollama.Client(host=server.host)
        client.generate(model=MODEL, prompt="", keep_alive=-1)
        direct = []
        for i in range(args.tasks):
            t0 = time.perf_counter()
            text = "".join(c.response for c in client.generate(model=MODEL, prompt=f"p{i}", stream=True, keep_alive=-1))
            direct.append(time.perf_counter() - t0)
            assert text

        script = NoopScript()
        m = ResidencyManager(OllamaBackend(server.host), {"transcribe": script}, ledger, SystemClock(), (0,),
                             poll_interval_s=0.005)
        handler = LlmHandler()
        via = []
        for i in range(args.tasks):
            task = Task.from_dict({"task_id": f"t{i}", "name": "b", "type": "llm", "model": MODEL,
                                   "params": {"prompt": f"p{i}"}})
            ctx = TaskContext(worker_id="b", gpu_ids=(0,), env={}, workdir=".", deadline=time.time() + 60,
                              extras={"endpoint": server.host})
            t0 = time.perf_counter()
            m.prepare(task, ctx)
            handler.run(task, ctx)
            m.finished(task, True)
            via.append(time.perf_counter() - t0)

        switches = []
        for i in range(10):
            s_task = Task.from_dict({"task_id": f"s{i}", "name": "s", "type": "transcribe", "params": {}})
            l_task = Task.from_dict({"task_id": f"l{i}", "name": "l", "type": "load_llm", "model": MODEL})
            ctx = TaskContext(worker_id="b", gpu_ids=(0,), env={}, workdir=".", deadline=time.time() + 60)
            t0 = time.perf_counter()
            m.prepare(s_task, ctx)
            script.run(s_task, ctx)
            m.finished(s_task, True)
            m.prepare(l_task, ctx)
            m.finished(l_task, True)
            switches.append(time.perf_counter() - t0)

    d, v = statistics.median(direct), statistics.median(via)
    print(f"simulated Ollama at {args.tokens_per_s:.0f} tokens/s, {args.tasks} tasks, medians:")
    print(f"  direct ollama client generate : {d * 1000:8.1f} ms/task")
    print(f"  through residency + LlmHandler: {v * 1000:8.1f} ms/task")
    print(f"  galaxy overhead               : {(v - d) * 1000:8.1f} ms/task ({(v - d) / d * 100:.1f}%)")
    print(f"  LLM -> script -> LLM switch   : {statistics.median(switches) * 1000:8.1f} ms "
          "(unload + VRAM wait + reload, load times scaled to 0)")


if __name__ == "__main__":
    main()
