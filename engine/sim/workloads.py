"""The benchmark's workloads, generated from a seed (bench/workloads/ holds them as plans).

(a) the notes' video pipeline: transcribe each clip, LLM topic segmentation per clip,
    embeddings per segment, one aggregate by the 14B brain;
(b) a mixed random stream with priorities, arriving over time;
(c) starvation: a steady high-priority LLM stream (slightly more than the rig can do) and a
    few low-priority tasks submitted just after it starts.
Durations are drawn once per task, so every policy runs exactly the same work.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from engine.model import TaskClass
from engine.sim.rigmodel import EMBEDDER, QWEN_7B, QWEN_14B, WHISPER, RigModel

CLASS_OF_MODEL = {QWEN_7B: TaskClass.LLM, QWEN_14B: TaskClass.LLM, WHISPER: TaskClass.SCRIPT,
                  EMBEDDER: TaskClass.SCRIPT}


@dataclass(frozen=True)
class SimTask:
    task_id: str
    kind: str  # transcribe | segment | embed | aggregate | llm | ...
    model: str | None
    priority: int
    duration_s: float  # run time once the model is resident
    arrival_s: float = 0.0
    depends_on: tuple[str, ...] = ()
    declared_class: TaskClass | None = None  # from a plan; else inferred from the model

    @property
    def task_class(self) -> TaskClass:
        if self.declared_class is not None:
            return self.declared_class
        return CLASS_OF_MODEL.get(self.model or "", TaskClass.CPU)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    tasks: tuple[SimTask, ...]
    notes: dict[str, float] = field(default_factory=dict)

    def typical_task_s(self) -> dict[str, float]:
        """Mean run time per model: what a rig learns from its task history."""
        sums: dict[str, list[float]] = {}
        for t in self.tasks:
            if t.model:
                sums.setdefault(t.model, []).append(t.duration_s)
        return {m: sum(v) / len(v) for m, v in sums.items()}

    def work_share(self) -> dict[str, float]:
        """Each model's share of all run time: what a rig learns from its task history."""
        total = sum(t.duration_s for t in self.tasks) or 1.0
        out: dict[str, float] = {}
        for t in self.tasks:
            if t.model:
                out[t.model] = out.get(t.model, 0.0) + t.duration_s / total
        return out


def video_pipeline(n_tasks: int, seed: int, rig: RigModel) -> Workload:
    """(a) About ``n_tasks`` tasks: ~7.5 per clip (1 transcribe, 1 segment, 3-8 embeds)."""
    rng = random.Random(f"video:{seed}")
    brain_model = QWEN_14B if rig.groups_for(QWEN_14B) else QWEN_7B
    clips = max(1, round((n_tasks - 1) / 7.5))
    tasks: list[SimTask] = []
    embeds: list[str] = []
    for i in range(clips):
        audio_s = rng.uniform(5, 30) * 60
        tr = SimTask(f"c{i}-transcribe", "transcribe", WHISPER, 5, audio_s / rng.uniform(15, 20))
        seg = SimTask(f"c{i}-segment", "segment", QWEN_7B, 5, rng.uniform(40, 100), depends_on=(tr.task_id,))
        tasks += [tr, seg]
        for k in range(rng.randint(3, 8)):
            e = SimTask(f"c{i}-embed{k}", "embed", EMBEDDER, 5, rng.uniform(1, 4), depends_on=(seg.task_id,))
            tasks.append(e)
            embeds.append(e.task_id)
    tasks.append(SimTask("aggregate", "aggregate", brain_model, 5, rng.uniform(150, 300), depends_on=tuple(embeds)))
    return Workload("a", f"video pipeline, {clips} clips", tuple(tasks))


@dataclass(frozen=True)
class RunTime:
    """A task's run time as work size / measured throughput, both drawn uniformly, so each
    figure traces to the field notes (sections 3 and 9; docs/scheduling.md, workload (b))."""

    size: tuple[float, float]  # tokens generated, seconds of audio, or texts embedded
    rate: tuple[float, float]  # the same unit per second on one GPU group

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(*self.size) / rng.uniform(*self.rate)

    @property
    def mean_s(self) -> float:
        """E[size] x E[1/rate] (independent draws; E[1/U(a, b)] = ln(b/a) / (b - a))."""
        (s0, s1), (r0, r1) = self.size, self.rate
        inv_rate = 1.0 / r0 if r0 == r1 else math.log(r1 / r0) / (r1 - r0)
        return (s0 + s1) / 2 * inv_rate

    @property
    def range_s(self) -> tuple[float, float]:
        return self.size[0] / self.rate[1], self.size[1] / self.rate[0]


# (b)'s mix: (kind, model, share, run time). Sizes and rates, with their sources:
LLM_7B_RUN = RunTime(size=(200, 800), rate=(10, 20))
"""200-800 generated tokens (the notes' log example records 500) at 10-20 tokens/s per 7B
worker (notes 9.2): 10-80 s, mean 35 s."""
TRANSCRIBE_RUN = RunTime(size=(5 * 60, 30 * 60), rate=(15, 20))
"""A 5-30 minute clip (as in workload (a)) at 15-20x realtime per GPU (notes 9.2): 15-120 s."""
EMBED_RUN = RunTime(size=(1_000, 10_000), rate=(1_000, 1_000))
"""A batch of 1,000-10,000 texts at ~1,000 embeddings/s per GPU (notes 9.2: ~4,000/s across
4 GPUs): 1-10 s."""
BRAIN_14B_RUN = RunTime(size=(200, 800), rate=(5, 10))
"""200-800 tokens from Qwen 14B split over two cards; the notes give no 14B rate, so half the
7B rate (twice the weights per token): 20-160 s."""

_MIX = (
    ("llm", QWEN_7B, 0.45, LLM_7B_RUN),
    ("transcribe", WHISPER, 0.25, TRANSCRIBE_RUN),
    ("embed", EMBEDDER, 0.25, EMBED_RUN),
    ("brain", QWEN_14B, 0.05, BRAIN_14B_RUN),
)
_PRIORITIES = ((3, 0.30), (5, 0.50), (7, 0.15), (9, 0.05))


def mixed_stream(n_tasks: int, seed: int, rig: RigModel, utilisation: float = 0.9,
                 max_batch: int = 1) -> Workload:
    """(b) Small plans (1..max_batch tasks of one kind and priority) arriving at Poisson
    times, sized so the work is ``utilisation`` of the rig's groups. ``max_batch=1`` gives
    single-task arrivals."""
    rng = random.Random(f"mixed:{seed}")
    mix = [m for m in _MIX if rig.groups_for(m[1])]
    mean_s = sum(share * run.mean_s for _, _, share, run in mix) / sum(m[2] for m in mix)
    mean_batch = (1 + max_batch) / 2
    rate = utilisation * len(rig.groups) / (mean_s * mean_batch)
    t = 0.0
    tasks: list[SimTask] = []
    while len(tasks) < n_tasks:
        t += rng.expovariate(rate)
        kind, model, _, run = rng.choices(mix, weights=[m[2] for m in mix])[0]
        prio = rng.choices([p for p, _ in _PRIORITIES], weights=[w for _, w in _PRIORITIES])[0]
        for _ in range(min(rng.randint(1, max_batch), n_tasks - len(tasks))):
            tasks.append(SimTask(f"m{len(tasks)}", kind, model, prio, run.draw(rng), arrival_s=round(t, 3)))
    return Workload("b", f"mixed stream, {n_tasks} tasks in plans of 1-{max_batch} at {utilisation:.0%} load",
                    tuple(tasks), notes={"utilisation": utilisation, "max_batch": max_batch})


def starvation(n_tasks: int, seed: int, rig: RigModel, overload: float = 1.1, burst: int = 40) -> Workload:
    """(c) A priority-9 LLM stream: ``burst`` tasks at t=0, then ``overload`` x what the rig
    can run; 4 priority-1 tasks (whisper, embeddings, LLM) arrive at t=60 s, behind the burst.
    Without aging they wait for the whole stream."""
    rng = random.Random(f"starve:{seed}")
    n_low = 4
    rate = overload * len(rig.groups) / 75.0  # stream tasks average 75 s
    t = 0.0
    tasks = []
    for i in range(max(1, n_tasks - n_low)):
        tasks.append(SimTask(f"hi{i}", "llm", QWEN_7B, 9, rng.uniform(30, 120), arrival_s=round(t, 3)))
        if i >= burst:
            t += rng.expovariate(rate)
    low = ((WHISPER, "transcribe"), (EMBEDDER, "embed"), (QWEN_7B, "llm"), (WHISPER, "transcribe"))
    for j in range(n_low):
        model, kind = low[j % len(low)]
        tasks.append(SimTask(f"lo{j}", kind, model, 1, rng.uniform(20, 90), arrival_s=60.0))
    return Workload("c", f"starvation, {len(tasks) - n_low} p9 + {n_low} p1 tasks", tuple(tasks),
                    notes={"overload": overload})


GENERATORS = {"a": video_pipeline, "b": mixed_stream, "c": starvation}


def make_workload(name: str, n_tasks: int, seed: int, rig: RigModel, load: float | None = None) -> Workload:
    """``load`` sets (b)'s utilisation or (c)'s overload; (a) has no arrival rate."""
    if name == "b" and load is not None:
        return mixed_stream(n_tasks, seed, rig, utilisation=load)
    if name == "c" and load is not None:
        return starvation(n_tasks, seed, rig, overload=load)
    try:
        gen = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose one of {', '.join(GENERATORS)}") from None
    return gen(n_tasks, seed, rig)
