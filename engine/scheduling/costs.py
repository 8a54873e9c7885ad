"""What switching a GPU group from one model to another costs, as an input to the claim
decision (never a constant buried in the policy).

The defaults are the field notes' figures for a GTX 1060 rig (mid-points of their ranges):
Qwen 7B cold start 1.5-2 min, Qwen 14B on two GPUs 2-2.5 min, whisper and
sentence-transformers 3-5 s, an Ollama unload (keep_alive: 0, then wait for the VRAM to
clear) 5-10 s. A rig's config or the simulator's rig model replaces them with its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelCost:
    load_s: float  # cold load until the first task can run
    unload_s: float  # until the VRAM is really free again
    task_s: float = 60.0  # typical task on this model (for "is this lane worth a second GPU?")
    workers_busy: float = 0.0
    """How many workers the model's recent work keeps busy (run time of the work that became
    claimable lately / the length of that window, from the rig's history; 0 = unknown). A
    worker that leaves a model held by fewer other workers than this leaves a reload behind:
    the model's steady work needs them."""


DEFAULT_MODEL_COSTS: dict[str, ModelCost] = {
    "qwen2.5:7b": ModelCost(load_s=105.0, unload_s=7.5, task_s=60.0),
    "qwen2.5:14b": ModelCost(load_s=135.0, unload_s=7.5, task_s=150.0),
    "whisper-small.en": ModelCost(load_s=4.0, unload_s=1.5, task_s=60.0),
    "all-mpnet-base-v2": ModelCost(load_s=4.0, unload_s=1.5, task_s=2.0),
}

UNKNOWN_MODEL_COST = ModelCost(load_s=60.0, unload_s=5.0, task_s=60.0)
"""A model the table does not know: assume an LLM-sized switch rather than a free one."""


@dataclass(frozen=True)
class SwitchCosts:
    """Per-model load/unload/typical-task seconds; ``switch_s`` is what a claim would cost."""

    models: Mapping[str, ModelCost] = field(default_factory=lambda: dict(DEFAULT_MODEL_COSTS))
    unknown: ModelCost = UNKNOWN_MODEL_COST

    def cost(self, model: str | None) -> ModelCost:
        if model is None:
            return ModelCost(0.0, 0.0, UNKNOWN_MODEL_COST.task_s)
        return self.models.get(model, self.unknown)

    def load_s(self, model: str | None) -> float:
        return self.cost(model).load_s

    def unload_s(self, model: str | None) -> float:
        return self.cost(model).unload_s

    def task_s(self, model: str | None) -> float:
        return self.cost(model).task_s

    def holders_needed(self, model: str | None) -> int:
        """Workers that must keep ``model`` warm for its steady work (at least one)."""
        return max(1, math.ceil(self.cost(model).workers_busy - 1e-9))

    def switch_s(self, resident: str | None, wanted: str | None) -> float:
        """Seconds of GPU time lost before a task needing ``wanted`` can start.

        A task with no model (shell/cpu) runs beside whatever is resident: no switch.
        """
        if wanted is None or wanted == resident:
            return 0.0
        return self.unload_s(resident) + self.load_s(wanted)
