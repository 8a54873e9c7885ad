#!/usr/bin/env python3
"""Router overhead: latency the router adds per request (p50/p99), 20 nodes in 3 tiers,
one node flapping (fails every other request and its breaker cycles).

Backends are in-process instant doubles, so what is measured is the router's own work:
classification, the routing decision, breaker and load bookkeeping, and fallback past
the flapping node. Run: .venv/bin/python bench/router_overhead.py [--requests N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.clock import SystemClock
from engine.inference.protocol import BackendError, GenerationResult, Health
from engine.routing.complexity import LlmRequest
from engine.routing.nodes import NodeConfig, RoutingConfig
from engine.routing.router import NoRoute, Router


class InstantBackend:
    """Answers at once; records how long its own work took so it can be subtracted."""

    def __init__(self, name: str, flapping: bool = False) -> None:
        self.name = name
        self.flapping = flapping
        self.calls = 0
        self.spent = 0.0

    def generate(self, model, prompt, **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        self.calls += 1
        try:
            if self.flapping and self.calls % 2:
                raise BackendError("flap")
            return GenerationResult(text="ok", model=model, eval_count=10, eval_duration_ns=10_000_000)
        finally:
            self.spent += time.perf_counter() - t0

    def health(self) -> Health:
        return Health(ok=not self.flapping or self.calls % 2 == 0, latency_ms=0.5 if self.flapping else 1.0, detail="")

    def load(self, model, keep_alive=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def unload(self, model):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def loaded(self):  # type: ignore[no-untyped-def]
        return []


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    args = ap.parse_args()
    rnd = random.Random(7)
    nodes = tuple(NodeConfig(f"n{i:02d}", f"http://127.0.0.1:{9000 + i}", "ollama", f"m{i % 3}", tier=i % 3,
                             max_concurrency=2, context_window=8192 * (1 + i % 3)) for i in range(20))
    backends = {n.name: InstantBackend(n.name, flapping=(n.name == "n00")) for n in nodes}
    cfg = RoutingConfig(nodes=nodes, breaker_failures=1, breaker_reset_s=0.001, breaker_reset_max_s=0.002)
    router = Router(cfg, backends, clock=SystemClock())
    prompts = [LlmRequest(prompt="word " * rnd.choice([5, 50, 3000, 7000]) + rnd.choice(["", " analyse and compare"]))
               for _ in range(64)]
    router.check_health()
    added: list[float] = []
    fell_back = 0
    for i in range(args.requests):
        req = prompts[i % len(prompts)]
        before = sum(b.spent for b in backends.values())
        t0 = time.perf_counter()
        try:
            r = router.execute(req)
            fell_back += bool(r.tried)
        except NoRoute:
            pass
        total = time.perf_counter() - t0
        added.append((total - (sum(b.spent for b in backends.values()) - before)) * 1000)
        if i % 50 == 0:
            router.check_health(["n00"])
    added.sort()
    q = statistics.quantiles(added, n=100)
    print(f"router_overhead: {args.requests} requests, 20 nodes / 3 tiers, node n00 flapping")
    print(f"  added latency p50 {q[49]:.3f} ms   p99 {q[98]:.3f} ms   max {added[-1]:.3f} ms")
    print(f"  requests that fell back past the flapping node: {fell_back}")
    print(f"  target: p99 < 2 ms -> {'MET' if q[98] < 2.0 else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
