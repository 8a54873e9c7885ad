"""Figures for one simulated run, and the lower bound no schedule can beat.

Lower bound = the largest of:
- work: (sum of run times + one cheapest load of every model used) / GPU groups (a group
  runs one task at a time, and every group starts cold);
- arrivals: for every arrival time T, T + (run time of tasks arriving at or after T) / groups;
- VRAM: for a model only some groups can hold, (its run time + one load) / those groups,
  and for every arrival time T, T + (its run time arriving at or after T) / those groups;
- critical path: a task ends no earlier than max(arrival, its dependencies' ends, the
  cheapest load of its model) + its run time;
- fan-in: a task starts only after all of its ancestors have run, which takes at least
  (their run time + one cheapest load of each of their models) / groups; then it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.sim.des import SimResult
from engine.sim.rigmodel import RigModel
from engine.sim.workloads import SimTask, Workload


@dataclass(frozen=True)
class RunFigures:
    workload: str
    policy: str
    makespan_s: float
    busy_fraction: float  # GPU-seconds running tasks / (GPUs x makespan)
    loads: int
    load_gpu_s: float  # GPU-seconds spent unloading and loading
    wait_by_priority: dict[int, tuple[float, float]]  # priority -> (p50, p95) seconds
    longest_wait_s: float
    longest_wait_task: str


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a real task's wait)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def figures(result: SimResult) -> RunFigures:
    rig = result.rig
    gpus = [len(g.gpus) for g in rig.groups]
    busy = sum(g.run_s * gpus[g.index] for g in result.groups)
    switching = sum(g.switch_s * gpus[g.index] for g in result.groups)
    span = result.makespan_s or 1.0
    by_prio: dict[int, list[float]] = {}
    longest, longest_id = 0.0, ""
    for tid, r in result.records.items():
        by_prio.setdefault(r.task.priority, []).append(r.wait_s)
        if r.wait_s > longest:
            longest, longest_id = r.wait_s, tid
    waits = {p: (percentile(v, 50), percentile(v, 95)) for p, v in sorted(by_prio.items(), reverse=True)}
    return RunFigures(result.workload.name, result.policy, result.makespan_s, busy / (rig.n_gpus * span),
                      sum(g.loads for g in result.groups), switching, waits, longest, longest_id)


def lower_bound(workload: Workload, rig: RigModel) -> float:
    tasks = workload.tasks
    if not tasks:
        return 0.0
    n_groups = len(rig.groups)
    models = {t.model for t in tasks if t.model}
    work = sum(t.duration_s for t in tasks) + sum(rig.min_load_s(m) for m in models)
    bound = work / n_groups

    suffix = 0.0
    suffix_by_model: dict[str, float] = {}
    hosts_of = {m: len(rig.groups_for(m)) for m in models}
    for t in sorted(tasks, key=lambda t: t.arrival_s, reverse=True):
        suffix += t.duration_s
        bound = max(bound, t.arrival_s + suffix / n_groups)
        if t.model and 0 < hosts_of[t.model] < n_groups:
            suffix_by_model[t.model] = suffix_by_model.get(t.model, 0.0) + t.duration_s
            bound = max(bound, t.arrival_s + suffix_by_model[t.model] / hosts_of[t.model])

    for m in models:
        hosts = rig.groups_for(m)
        if not hosts:
            raise ValueError(f"model {m} fits no GPU group of this rig")
        if len(hosts) < n_groups:
            only_here = sum(t.duration_s for t in tasks if t.model == m) + rig.min_load_s(m)
            bound = max(bound, only_here / len(hosts))

    by_id = {t.task_id: t for t in tasks}
    end: dict[str, float] = {}
    order = _topological(workload)
    for tid in order:
        t = by_id[tid]
        start = max([t.arrival_s, rig.min_load_s(t.model)] + [end[d] for d in t.depends_on])
        end[tid] = start + t.duration_s
    return max(bound, max(end.values()), _fan_in_bound(order, by_id, rig))


def _fan_in_bound(order: list[str], by_id: dict[str, SimTask], rig: RigModel, max_set_entries: int = 2_000_000) -> float:
    """max over tasks of (ancestors' work + their models' loads) / groups + own run time.

    Ancestor sets are built in topological order; past ``max_set_entries`` in total the
    bound stops growing (it stays a valid bound, only less tight)."""
    ancestors: dict[str, frozenset[str]] = {}
    entries = 0
    best = 0.0
    n_groups = len(rig.groups)
    for tid in order:
        t = by_id[tid]
        if not t.depends_on:
            ancestors[tid] = frozenset()
            continue
        acc: set[str] = set(t.depends_on)
        for d in t.depends_on:
            acc |= ancestors[d]
        entries += len(acc)
        if entries > max_set_entries:
            break
        ancestors[tid] = frozenset(acc)
        work = sum(by_id[a].duration_s for a in acc)
        loads = sum(rig.min_load_s(m) for m in {by_id[a].model for a in acc if by_id[a].model})
        best = max(best, (work + loads) / n_groups + t.duration_s)
    return best


def _topological(workload: Workload) -> list[str]:
    indegree = {t.task_id: len(t.depends_on) for t in workload.tasks}
    children: dict[str, list[str]] = {}
    for t in workload.tasks:
        for d in t.depends_on:
            children.setdefault(d, []).append(t.task_id)
    order = [tid for tid, n in indegree.items() if n == 0]
    i = 0
    while i < len(order):
        for c in children.get(order[i], ()):
            indegree[c] -= 1
            if indegree[c] == 0:
                order.append(c)
        i += 1
    if len(order) != len(indegree):
        raise ValueError(f"workload {workload.name}: dependency cycle")
    return order
