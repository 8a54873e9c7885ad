"""Discrete-event simulation of a rig pulling work from lanes, on a virtual clock.

It calls the real claim policy (``engine.scheduling``): each idle GPU group builds the same
``Candidate`` list a ``FileQueue`` offers (the head of each (class, model) x priority lane,
with its depth), a ``WorkerProfile`` with its resident model and a ``RigView`` of the other
groups, and takes the first task the policy returns, loading the task's model first if it is
not resident. Deterministic for a seed: ties break by group index and sequence number.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from engine.model import TaskClass
from engine.queue.protocol import Candidate, ClaimPolicy
from engine.scheduling.costs import SwitchCosts
from engine.scheduling.policy import IdlePeer, RigView, WorkerProfile, overdue_after_s
from engine.sim.demand import DemandWindow
from engine.sim.rigmodel import RigModel
from engine.sim.workloads import SimTask, Workload

PolicyFactory = Callable[[WorkerProfile, RigView], ClaimPolicy]
DEFAULT_DEMAND_WINDOW_S = 3600.0  # a rig's "recent work": the last hour


@dataclass
class TaskRecord:
    task: SimTask
    ready_s: float = -1.0
    claim_s: float = -1.0
    start_s: float = -1.0  # after any switch
    end_s: float = -1.0
    group: int = -1

    @property
    def wait_s(self) -> float:
        return self.claim_s - self.ready_s


@dataclass
class GroupState:
    index: int
    resident: str | None = None
    busy: bool = False
    idle_since: float = 0.0
    switches: int = 0
    loads: int = 0
    switch_s: float = 0.0  # unload + load seconds (group time)
    run_s: float = 0.0


@dataclass
class SimResult:
    workload: Workload
    rig: RigModel
    policy: str
    records: dict[str, TaskRecord]
    groups: list[GroupState]
    makespan_s: float
    claims: int = 0
    policy_calls: int = 0
    meta: dict[str, float] = field(default_factory=dict)


class Simulator:
    def __init__(self, rig: RigModel, workload: Workload, policy_factory: PolicyFactory, *,
                 policy_name: str, seed: int, costs: SwitchCosts | None = None,
                 aging_step_s: float = 300.0, demand_window_s: float | None = DEFAULT_DEMAND_WINDOW_S) -> None:
        """``costs`` fixes the policy's cost input for the whole run; without it the rig model's
        costs are used, with each model's ``workers_busy`` from the work that became claimable
        in the last ``demand_window_s`` (None: the whole workload's share, known up front)."""
        self.rig = rig
        self.workload = workload
        self.policy_factory = policy_factory
        self.policy_name = policy_name
        self.seed = seed
        typical = workload.typical_task_s()
        self._demand: DemandWindow | None = None
        if costs is not None:
            self.costs = costs
        elif demand_window_s is None:
            self.costs = rig.switch_costs(typical, workload.work_share())
        else:
            self.costs = rig.switch_costs(typical)
            self._demand = DemandWindow(demand_window_s, typical, len(rig.groups))
        self.aging_step_s = aging_step_s
        self._hostable = [rig.hostable(g) for g in rig.groups]
        for t in workload.tasks:
            if t.model is not None and not rig.groups_for(t.model):
                raise ValueError(f"task {t.task_id} needs {t.model}, which fits no GPU group of this rig")

    def run(self) -> SimResult:
        tasks = {t.task_id: t for t in self.workload.tasks}
        records = {tid: TaskRecord(t) for tid, t in tasks.items()}
        waiting_on: dict[str, int] = {}
        dependents: dict[str, list[str]] = {}
        for t in self.workload.tasks:
            missing = [d for d in t.depends_on if d not in tasks]
            if missing:
                raise ValueError(f"task {t.task_id} depends on unknown task(s) {missing}")
            waiting_on[t.task_id] = len(t.depends_on)
            for d in t.depends_on:
                dependents.setdefault(d, []).append(t.task_id)

        groups = [GroupState(i) for i in range(len(self.rig.groups))]
        lanes: dict[tuple[str, int], deque[str]] = {}
        events: list[tuple[float, int, str, object]] = []
        seq = 0
        arrived: set[str] = set()
        for t in self.workload.tasks:
            heapq.heappush(events, (t.arrival_s, seq, "arrive", t.task_id))
            seq += 1

        def make_ready(tid: str, now: float) -> None:
            t = tasks[tid]
            records[tid].ready_s = now
            if self._demand is not None:
                self._demand.add(now, t.model)
            lanes.setdefault((t.model or "", t.priority), deque()).append(tid)

        now = 0.0
        claims = calls = 0
        done = 0
        wake_at: float | None = None
        while events:
            now = events[0][0]
            while events and events[0][0] == now:
                _, _, kind, data = heapq.heappop(events)
                if kind == "arrive":
                    tid = str(data)
                    arrived.add(tid)
                    if waiting_on[tid] == 0:
                        make_ready(tid, now)
                elif kind == "done":
                    g_index, tid = cast(tuple[int, str], data)
                    g = groups[g_index]
                    g.busy, g.idle_since = False, now
                    records[tid].end_s = now
                    done += 1
                    for dep in dependents.get(tid, ()):
                        waiting_on[dep] -= 1
                        if waiting_on[dep] == 0 and dep in arrived:
                            make_ready(dep, now)
                elif kind == "wake":
                    wake_at = None
            # Idle groups pull until a whole pass claims nothing (one claim changes the others' view).
            claimed_any = True
            while claimed_any:
                claimed_any = False
                candidates = self._candidates(lanes, records)
                if not candidates:
                    break
                for g in sorted((g for g in groups if not g.busy), key=lambda g: (g.idle_since, g.index)):
                    calls += 1
                    chosen = self._choose(g, groups, candidates, now)
                    if chosen is None:
                        continue
                    tid = lanes[(chosen.model or "", chosen.priority)].popleft()
                    if not lanes[(chosen.model or "", chosen.priority)]:
                        del lanes[(chosen.model or "", chosen.priority)]
                    end = self._start(g, records[tid], now)
                    heapq.heappush(events, (end, seq, "done", (g.index, tid)))
                    seq += 1
                    claims += 1
                    claimed_any = True
                    break  # rebuild candidates (a lane head moved)
            # Aging can make a skipped task overdue with no event in between: wake up then.
            if lanes and any(not g.busy for g in groups):
                due = min(records[q[0]].ready_s + overdue_after_s(p, self.aging_step_s) for (_, p), q in lanes.items())
                if due > now and (wake_at is None or due < wake_at):
                    wake_at = due
                    heapq.heappush(events, (due, seq, "wake", None))
                    seq += 1

        unfinished = [tid for tid, r in records.items() if r.end_s < 0]
        if unfinished:
            raise RuntimeError(f"{self.policy_name}: {len(unfinished)} task(s) never ran, e.g. {unfinished[:3]}")
        makespan = max(r.end_s for r in records.values()) if records else 0.0
        return SimResult(self.workload, self.rig, self.policy_name, records, groups, makespan, claims, calls)

    def _candidates(self, lanes: dict[tuple[str, int], deque[str]], records: dict[str, TaskRecord]) -> list[Candidate]:
        out = []
        for (_model, prio), q in lanes.items():
            head = records[q[0]]
            t = head.task
            out.append(Candidate(t.task_id, t.task_class, t.model, prio, head.ready_s, lane_depth=len(q)))
        return out

    def _choose(self, g: GroupState, groups: list[GroupState], candidates: list[Candidate],
                now: float) -> Candidate | None:
        idle_warm: dict[str, int] = {}
        busy_warm: dict[str, int] = {}
        peers = []
        for other in groups:
            if other is g:
                continue
            if not other.busy:
                peers.append(IdlePeer(other.resident, self._hostable[other.index]))
            if other.resident is None:
                continue
            bucket = busy_warm if other.busy else idle_warm
            bucket[other.resident] = bucket.get(other.resident, 0) + 1
        resident_class = None
        if g.resident is not None:
            resident_class = self.rig.models[g.resident].task_class
        profile = WorkerProfile(
            worker_id=self.rig.groups[g.index].group_id,
            allowed_classes=(TaskClass.CPU, TaskClass.SCRIPT, TaskClass.LLM, TaskClass.RESOURCE),
            resident_model=g.resident, resident_class=resident_class,
            hostable_models=self._hostable[g.index])
        view = RigView(warm_elsewhere=idle_warm, busy_warm_elsewhere=busy_warm, idle_peers=tuple(peers),
                       costs=self._demand.costs(self.costs, now) if self._demand else self.costs)
        ordered = self.policy_factory(profile, view)(candidates, now)
        return ordered[0] if ordered else None

    def _start(self, g: GroupState, rec: TaskRecord, now: float) -> float:
        t = rec.task
        switch = 0.0
        if t.model is not None and t.model != g.resident:
            unload_s, load_s = self.rig.sample_switch(self.seed, g.index, g.switches, g.resident, t.model)
            g.switches += 1
            g.loads += 1
            switch = unload_s + load_s
            g.switch_s += switch
            g.resident = t.model
        g.busy = True
        g.run_s += t.duration_s
        rec.claim_s, rec.start_s, rec.group = now, now + switch, g.index
        return now + switch + t.duration_s
