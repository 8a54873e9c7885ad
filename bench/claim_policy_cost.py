"""What a worker's claim policy costs per claim: one ``make_claim_policy`` decision over 10 lane heads
(CPU lanes without a model, and LLM lanes over three models, this worker holding none), best of 7
rounds of 2,000 decisions. A Redis claim offers every lane's head to it, so this is worker CPU per task.

    .venv/bin/python bench/claim_policy_cost.py

2026-12-07 22:45 UTC, quiet 2-core VM, a ``git archive`` of the code before the late-night change
(reasons worded only when read; the switch cost and the coverage of the resident model worked out
once per decision) alternated with the code after it, twice: cpu lanes 80.5 (cold) / 45.2 ->
38.7 / 37.0 us, llm lanes 82.2 / 86.2 -> 56.1 / 56.0 us per decision of 10 lane heads.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.model import TaskClass
from engine.queue.protocol import Candidate
from engine.scheduling.policy import WorkerProfile, make_claim_policy

ROUNDS, DECISIONS, NOW = 7, 2_000, 1_100.0


def per_decision_us(candidates: list[Candidate]) -> float:
    policy = make_claim_policy(WorkerProfile("w"))
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(DECISIONS):
            policy(candidates, NOW)
        best = min(best, (time.perf_counter() - start) / DECISIONS)
    return best * 1e6


def main() -> None:
    cpu = [Candidate(f"t{i}", TaskClass.CPU, None, 1 + i, 1_000.0 + i) for i in range(10)]
    llm = [Candidate(f"l{i}", TaskClass.LLM, f"m{i % 3}", 5, 1_000.0 + i) for i in range(10)]
    for name, lanes in (("cpu lanes", cpu), ("llm lanes", llm)):
        print(f"{name}: {per_decision_us(lanes):.1f} us per decision of 10 lane heads")


if __name__ == "__main__":
    main()
