"""The scheduling benchmark behind ``galaxy bench schedule`` and ``bench/schedule_bench.py``:
every policy on every workload over the same simulated rig, against the lower bound."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from engine.model import TaskClass
from engine.queue.protocol import ClaimPolicy
from engine.scheduling.baseline import make_notes_policy
from engine.scheduling.policy import (
    DEFAULT_AGING_STEP_S,
    RigView,
    SwitchTuning,
    WorkerProfile,
    make_claim_policy,
    overdue_after_s,
)
from engine.sim.des import PolicyFactory, SimResult, Simulator
from engine.sim.metrics import RunFigures, figures, lower_bound
from engine.sim.rigmodel import RigModel, default_rig
from engine.sim.workloads import Workload, make_workload

DEFAULT_TASKS = {"a": 1000, "b": 1000, "c": 600}


def galaxy_policy(aging_step_s: float = DEFAULT_AGING_STEP_S) -> PolicyFactory:
    def factory(profile: WorkerProfile, view: RigView) -> ClaimPolicy:
        return make_claim_policy(profile, view, aging_step_s)
    return factory


BASELINE_PREFERENCES: dict[str, tuple[TaskClass, ...]] = {
    "llm": (TaskClass.LLM,), "script": (TaskClass.SCRIPT,), "none": ()}
"""Readings of the notes' "preferred class" for their workers. ``llm`` (the default) is the
notes' own description (workers run Qwen) and the best of the three for the baseline on (b)."""


def baseline_policy(prefers: str = "llm") -> PolicyFactory:
    """The notes' order; their workers prefer ``prefers`` work, then take anything."""
    try:
        preferred = BASELINE_PREFERENCES[prefers]
    except KeyError:
        raise ValueError(f"unknown baseline preference {prefers!r}; choose one of "
                         f"{', '.join(BASELINE_PREFERENCES)}") from None

    def factory(profile: WorkerProfile, view: RigView) -> ClaimPolicy:
        return make_notes_policy(replace(profile, preferred_classes=preferred))
    return factory


POLICIES: dict[str, PolicyFactory] = {"galaxy": galaxy_policy(), "baseline": baseline_policy("llm")}


@dataclass(frozen=True)
class BenchRow:
    figures: RunFigures
    lower_bound_s: float
    sim_seconds: float  # wall time of the simulation itself
    promise_ok: bool | None  # (c) only: every task claimed within aging_promise_s
    tasks: int = 0


def aging_promise_s(priority: int, rig: RigModel, workload: Workload,
                    aging_step_s: float = DEFAULT_AGING_STEP_S, tuning: SwitchTuning = SwitchTuning()) -> float:
    """The longest wait the aging rule allows a task when no older overdue work is queued
    ahead of it (docs/scheduling.md): overdue time, plus the switch handicap among overdue
    tasks, plus the longest a worker stays committed to what it already took (switch + run)."""
    longest_switch = max((max(m.unload_s) for m in rig.models.values()), default=0.0) + \
        max((max(m.load_s) for m in rig.models.values()), default=0.0)
    longest_run = max((t.duration_s for t in workload.tasks), default=0.0)
    handicap = tuning.overdue_age_cap_steps * aging_step_s
    return overdue_after_s(priority, aging_step_s) + handicap + longest_switch + longest_run


def promise_kept(result: SimResult, aging_step_s: float = DEFAULT_AGING_STEP_S) -> bool:
    """The starvation check: every task of the lowest priority claimed within the promise.

    (Higher-priority tasks of an overloaded stream wait behind older overdue tasks of their
    own, which the promise does not bound: it is first-come first-served among them.)
    """
    lowest = min(r.task.priority for r in result.records.values())
    return all(r.wait_s <= aging_promise_s(r.task.priority, result.rig, result.workload, aging_step_s)
               for r in result.records.values() if r.task.priority == lowest)


def run_one(workload: Workload, rig: RigModel, policy: str, seed: int,
            baseline_prefers: str = "llm") -> tuple[SimResult, float]:
    factory = baseline_policy(baseline_prefers) if policy == "baseline" else POLICIES[policy]
    started = time.perf_counter()
    result = Simulator(rig, workload, factory, policy_name=policy, seed=seed).run()
    return result, time.perf_counter() - started


def run_bench(workloads: list[str], gpus: int, seed: int, tasks: int | None = None,
              policies: tuple[str, ...] = ("galaxy", "baseline"), load: float | None = None,
              baseline_prefers: str = "llm") -> list[BenchRow]:
    rig = default_rig(gpus)
    rows = []
    for name in workloads:
        wl = make_workload(name, tasks or DEFAULT_TASKS[name], seed, rig, load)
        lb = lower_bound(wl, rig)
        for policy in policies:
            result, wall = run_one(wl, rig, policy, seed, baseline_prefers)
            promise = promise_kept(result) if name == "c" else None
            rows.append(BenchRow(figures(result), lb, wall, promise, len(wl.tasks)))
    return rows


def run_plan_bench(path: Path, gpus: int, seed: int,
                   policies: tuple[str, ...] = ("galaxy", "baseline")) -> list[BenchRow]:
    """The same comparison on a plan file's tasks (all submitted at t=0)."""
    from engine.sim.plan_workload import workload_from_plan

    wl, rig = workload_from_plan(path, seed, default_rig(gpus))
    lb = lower_bound(wl, rig)
    rows = []
    for policy in policies:
        result, wall = run_one(wl, rig, policy, seed)
        rows.append(BenchRow(figures(result), lb, wall, None, len(wl.tasks)))
    return rows


def _yes_no(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def _min(s: float) -> str:
    return f"{s / 60:.1f}"


def format_table(rows: list[BenchRow], gpus: int, seed: int) -> str:
    w = max([3] + [len(r.figures.workload) + 1 for r in rows])
    head = (f"{'wl':<{w}}{'policy':<10}{'tasks':>6}{'makespan min':>13}{'x LB':>6}{'vs base':>8}"
            f"{'busy %':>7}{'loads':>6}{'load GPU-min':>13}{'longest wait min':>17}{'aging ok':>9}")
    lines = [f"rig: {gpus} GPUs, seed {seed}; times in minutes of simulated time", head, "-" * len(head)]
    base = {r.figures.workload: r.figures.makespan_s for r in rows if r.figures.policy == "baseline"}
    done_lb: set[str] = set()
    for r in rows:
        f = r.figures
        if f.workload not in done_lb:
            ceiling = f"{base[f.workload] / r.lower_bound_s:.2f}" if f.workload in base and r.lower_bound_s else ""
            lines.append(f"{f.workload:<{w}}{'bound':<10}{'':>6}{_min(r.lower_bound_s):>13}{'1.00':>6}{ceiling:>8}")
            done_lb.add(f.workload)
        ratio = f"{base[f.workload] / f.makespan_s:.2f}" if f.workload in base and f.makespan_s else ""
        lines.append(f"{f.workload:<{w}}{f.policy:<10}{r.tasks:>6}"
                     f"{_min(f.makespan_s):>13}{f.makespan_s / r.lower_bound_s:>6.2f}{ratio:>8}"
                     f"{100 * f.busy_fraction:>7.1f}{f.loads:>6}{_min(f.load_gpu_s):>13}"
                     f"{_min(f.longest_wait_s):>17}{_yes_no(r.promise_ok):>9}")
    if base:
        lines.append("(vs base on a bound row: the speed-up over the baseline of a schedule that ends on the bound,"
                     " the most any policy can show)")
    lines.append("")
    lines.append("wait by priority, p50 / p95 minutes (claimable until claimed)")
    for r in rows:
        f = r.figures
        cells = "  ".join(f"p{p}: {_min(a)} / {_min(b)}" for p, (a, b) in f.wait_by_priority.items())
        lines.append(f"{f.workload:<{w}}{f.policy:<10}{cells}")
    lines.append("")
    lines.append("simulation wall time: " + ", ".join(f"{r.figures.workload}/{r.figures.policy} {r.sim_seconds:.2f} s"
                                                     for r in rows))
    return "\n".join(lines)


def format_seed_summary(by_seed: dict[int, list[BenchRow]], gpus: int) -> str:
    """Ranges over seeds: ratio to the bound, speed-up over the baseline (on the bound row, the
    most any schedule could show: baseline / bound), loads and the longest wait."""
    seeds = sorted(by_seed)
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    for seed in seeds:
        rows = by_seed[seed]
        base = {r.figures.workload: r.figures.makespan_s for r in rows if r.figures.policy == "baseline"}
        bounds = {r.figures.workload: r.lower_bound_s for r in rows}
        for wl, lb in bounds.items():
            ceiling = cells.setdefault((wl, "bound"), {})
            if wl in base and lb:
                ceiling.setdefault("vs base", []).append(base[wl] / lb)
        for r in rows:
            f = r.figures
            c = cells.setdefault((f.workload, f.policy), {})
            c.setdefault("x LB", []).append(f.makespan_s / r.lower_bound_s)
            if f.workload in base:
                c.setdefault("vs base", []).append(base[f.workload] / f.makespan_s)
            c.setdefault("loads", []).append(float(f.loads))
            c.setdefault("longest wait min", []).append(f.longest_wait_s / 60)

    head = f"{'wl':<4}{'policy':<10}{'x LB':>11}{'vs base':>11}{'loads':>11}{'longest wait min':>18}"
    lines = [f"rig: {gpus} GPUs, seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} runs); ranges min-max",
             head, "-" * len(head)]
    bound_first = sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1] != "bound"))  # stable: policy order kept
    for (wl, policy), c in bound_first:
        if policy == "bound":
            lines.append(f"{wl:<4}{'bound':<10}{'1.00':>11}{_span(c.get('vs base'), '.2f'):>11}")
            continue
        lines.append(f"{wl:<4}{policy:<10}{_span(c['x LB'], '.2f'):>11}{_span(c.get('vs base'), '.2f'):>11}"
                     f"{_span(c['loads'], '.0f'):>11}{_span(c['longest wait min'], '.1f'):>18}")
    lines.append("(vs base on a bound row: the most any schedule can show over the baseline)")
    return "\n".join(lines)


def _span(values: list[float] | None, fmt: str) -> str:
    if not values:
        return ""
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}-{hi}"
