"""A simulated rig for the scheduling benchmark: GPU groups with VRAM, model footprints and
load/unload times. A model that does not fit one card runs on a group of cards (the notes'
brain: Qwen 14B on GPUs 0+3).

Figures are the field notes' (GTX 1060 6 GB): Qwen 7B cold start 90-120 s, Qwen 14B on two
GPUs 120-150 s, whisper small.en and sentence-transformers 3-5 s, an Ollama unload 5-10 s.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.model import TaskClass
from engine.scheduling.costs import ModelCost, SwitchCosts

QWEN_7B = "qwen2.5:7b"
QWEN_14B = "qwen2.5:14b"
WHISPER = "whisper-small.en"
EMBEDDER = "all-mpnet-base-v2"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task_class: TaskClass
    vram_gb: float
    load_s: tuple[float, float]  # (fastest, slowest) cold load
    unload_s: tuple[float, float]


@dataclass(frozen=True)
class GroupSpec:
    """GPUs that run one model together; one task at a time, as one worker."""

    group_id: str
    gpus: tuple[int, ...]
    vram_gb_per_gpu: float = 6.0

    @property
    def vram_gb(self) -> float:
        return self.vram_gb_per_gpu * len(self.gpus)


DEFAULT_MODELS: dict[str, ModelSpec] = {
    QWEN_7B: ModelSpec(QWEN_7B, TaskClass.LLM, 4.7, (90.0, 120.0), (5.0, 10.0)),
    QWEN_14B: ModelSpec(QWEN_14B, TaskClass.LLM, 9.0, (120.0, 150.0), (5.0, 10.0)),
    WHISPER: ModelSpec(WHISPER, TaskClass.SCRIPT, 1.0, (3.0, 5.0), (1.0, 2.0)),
    EMBEDDER: ModelSpec(EMBEDDER, TaskClass.SCRIPT, 0.5, (3.0, 5.0), (1.0, 2.0)),
}


@dataclass(frozen=True)
class RigModel:
    groups: tuple[GroupSpec, ...]
    models: Mapping[str, ModelSpec] = field(default_factory=lambda: dict(DEFAULT_MODELS))

    @property
    def n_gpus(self) -> int:
        return sum(len(g.gpus) for g in self.groups)

    def hostable(self, group: GroupSpec) -> frozenset[str]:
        return frozenset(m.name for m in self.models.values() if m.vram_gb <= group.vram_gb)

    def groups_for(self, model: str | None) -> tuple[int, ...]:
        """Indexes of the groups whose VRAM holds ``model`` (all groups for no model)."""
        if model is None:
            return tuple(range(len(self.groups)))
        return tuple(i for i, g in enumerate(self.groups) if model in self.hostable(g))

    def min_load_s(self, model: str | None) -> float:
        return 0.0 if model is None else self.models[model].load_s[0]

    def sample_switch(self, seed: int, group_index: int, switch_number: int,
                      unload: str | None, load: str | None) -> tuple[float, float]:
        """(unload_s, load_s) of one switch; the same for every policy at the same count."""
        rng = random.Random(f"switch:{seed}:{group_index}:{switch_number}")
        u = rng.uniform(*self.models[unload].unload_s) if unload else 0.0
        ld = rng.uniform(*self.models[load].load_s) if load else 0.0
        return u, ld

    def switch_costs(self, typical_task_s: Mapping[str, float],
                     work_share: Mapping[str, float] | None = None) -> SwitchCosts:
        """The policy's cost input: mid-range load/unload, typical task time per model and,
        when known, how many groups each model's share of the work keeps busy."""
        share = work_share or {}
        table = {
            m.name: ModelCost(load_s=sum(m.load_s) / 2, unload_s=sum(m.unload_s) / 2,
                              task_s=typical_task_s.get(m.name, 60.0),
                              workers_busy=share.get(m.name, 0.0) * len(self.groups))
            for m in self.models.values()
        }
        return SwitchCosts(models=table)


def default_rig(n_gpus: int = 5) -> RigModel:
    """The notes' rig: a 2-GPU brain group (GPUs 0+3) and single-GPU workers.

    With fewer than four GPUs the brain pairs GPUs 0+1; a single GPU has no group that
    can hold Qwen 14B.
    """
    if n_gpus < 1:
        raise ValueError(f"a rig needs at least one GPU, got {n_gpus}")
    if n_gpus == 1:
        return RigModel(groups=(GroupSpec("gpu0", (0,)),))
    pair = (0, 3) if n_gpus >= 4 else (0, 1)
    singles = [i for i in range(n_gpus) if i not in pair]
    groups = [GroupSpec(f"brain{pair[0]}+{pair[1]}", pair)] + [GroupSpec(f"gpu{i}", (i,)) for i in singles]
    return RigModel(groups=tuple(groups))
