"""Read a plan file (docs/plan-format.md) as a simulator workload.

The plan gives the structure: tasks, models, priorities, dependencies. Run times are not
part of a plan, so they come from a duration model per task type, drawn per task id (the
same plan and seed give the same run times whatever the policy). A model the rig model does
not know is simulated like the built-in model of its kind (whisper-like for transcribe,
embedder-like for embed, Qwen 7B-like for an LLM; "14b" in the name means Qwen 14B-like).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from engine.model import Task, TaskType
from engine.sim.rigmodel import EMBEDDER, QWEN_7B, QWEN_14B, WHISPER, RigModel
from engine.sim.workloads import SimTask, Workload

DURATION_S: dict[TaskType, tuple[float, float]] = {
    TaskType.TRANSCRIBE: (15.0, 120.0),  # 5-30 min clips at 15-20x realtime
    TaskType.LLM: (40.0, 100.0),  # ~500 tokens at 10-20 tokens/s plus the prompt
    TaskType.EMBED: (3.0, 30.0),
    TaskType.SHELL: (5.0, 30.0),
    TaskType.LOAD_LLM: (1.0, 1.0),
    TaskType.UNLOAD_LLM: (1.0, 1.0),
}
BIG_LLM_DURATION_S = (150.0, 300.0)


def _like(task: Task) -> str | None:
    if task.model is None:
        return None
    if task.type is TaskType.TRANSCRIBE:
        return WHISPER
    if task.type is TaskType.EMBED:
        return EMBEDDER
    return QWEN_14B if "14b" in task.model.lower() else QWEN_7B


def workload_from_tasks(tasks: list[Task], seed: int, rig: RigModel, name: str) -> tuple[Workload, RigModel]:
    """SimTasks for ``tasks`` and the rig model extended with any model the plan names."""
    models = dict(rig.models)
    out = []
    for t in tasks:
        like = _like(t)
        if t.model is not None and t.model not in models and like is not None:
            models[t.model] = replace(models[like], name=t.model)
        lo, hi = BIG_LLM_DURATION_S if like == QWEN_14B else DURATION_S[t.type]
        duration = random.Random(f"plan:{seed}:{t.task_id}").uniform(lo, hi)
        out.append(SimTask(t.task_id, t.type.value, t.model, t.priority, duration, 0.0, t.depends_on, t.task_class))
    return Workload(name, f"plan {name}, {len(out)} tasks", tuple(out)), replace(rig, models=models)


def workload_from_plan(path: Path, seed: int, rig: RigModel) -> tuple[Workload, RigModel]:
    from engine.plans import load_plan

    tasks = load_plan(Path(path), now=0.0, source="bench", batch_id="sim")
    return workload_from_tasks(tasks, seed, rig, Path(path).stem)
