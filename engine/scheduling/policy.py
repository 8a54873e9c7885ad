"""Claim policy: which waiting task a worker should take next. Pure functions of
(candidates, worker profile, rig view, now, switching costs): the worker, the supervisor's
"why does this wait" explanation and the discrete-event simulator all call this same code.

Order, best first (docs/scheduling.md explains why):

1. ``resource`` tasks (load_llm / unload_llm), oldest first.
2. Overdue tasks, oldest first, regardless of residency, class preference or batching.
   A task is overdue once its effective priority has reached 10 by aging: after
   ``(10 - priority) x aging_step_s`` of claimable waiting (at once for priority 10).
3. The worker's preferred classes (an operator setting; empty by default), then
4. the residency score: effective priority minus the switching cost of taking the lane,
   in priority levels (``SwitchTuning``): a lane whose model is warm here costs nothing, so
   it beats an equal or slightly higher priority lane that needs a model load. Leaving a
   warm lane that still has work also charges the reload that work will need later, so an
   A,B,A,B queue is taken as A,A,B,B; so does leaving a model held by fewer other workers
   than its share of the rig's work keeps busy (``ModelCost.workers_busy``).

Look-ahead: a lane whose model is warm on another worker is dropped from this worker's
list (left for the warm worker) unless the warm workers would take longer to drain it than
this worker needs to load the model (lane depth x typical task time / warm workers >
switch time). Overdue tasks are never dropped: aging bounds every wait.

Aging: a task gains one priority level per ``aging_step_s`` waited, capped at 10.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from engine.model import TaskClass
from engine.queue.protocol import Candidate, ClaimPolicy
from engine.scheduling.capability import WorkerCapabilities, cannot_run
from engine.scheduling.costs import SwitchCosts

DEFAULT_AGING_STEP_S = 300.0
MAX_PRIORITY = 10.0


@dataclass(frozen=True)
class WorkerProfile:
    worker_id: str
    preferred_classes: tuple[TaskClass, ...] = ()
    allowed_classes: tuple[TaskClass, ...] = tuple(TaskClass)
    resident_model: str | None = None  # what is warm on this worker's GPU(s) now
    resident_class: TaskClass | None = None
    hostable_models: frozenset[str] | None = None
    """Models that fit this worker's GPU group (VRAM); None means any."""
    capabilities: WorkerCapabilities | None = None
    """What it can run at all (LLM backend, served model); None means anything (simulator)."""


@dataclass(frozen=True)
class IdlePeer:
    resident_model: str | None
    hostable_models: frozenset[str] | None = None  # None means any


@dataclass(frozen=True)
class RigView:
    """What the worker knows of the rest of the rig (from the supervisor's snapshot)."""

    warm_elsewhere: dict[str, int] = field(default_factory=dict)  # model -> idle workers holding it warm
    busy_warm_elsewhere: dict[str, int] = field(default_factory=dict)
    """model -> other workers holding (or loading) it while running a task."""
    idle_peers: tuple[IdlePeer, ...] = ()
    """The other idle workers (for "could another worker switch to this more cheaply?")."""
    costs: SwitchCosts = field(default_factory=SwitchCosts)

    def holders(self, model: str | None) -> int:
        """Other workers that hold ``model`` warm, idle or busy."""
        if model is None:
            return 0
        return self.warm_elsewhere.get(model, 0) + self.busy_warm_elsewhere.get(model, 0)


@dataclass(frozen=True)
class SwitchTuning:
    """How switching seconds convert to priority levels in the residency score."""

    max_levels: float = 2.0  # the most a switch can weigh against priority
    full_weight_s: float = 60.0  # a switch this long (or longer) weighs max_levels
    overdue_age_per_switch_s: float = 3.0
    """Among overdue tasks, one that needs a switch counts as this many seconds younger per
    second of switch, up to ``overdue_age_cap_steps`` aging steps: overdue work drains in
    batches instead of reloading for every task, and the aging bound grows by the cap."""
    overdue_age_cap_steps: float = 1.0


@dataclass(frozen=True)
class Decision:
    """One candidate's place in a worker's order, with the reason (for "why does this wait").

    The reason is worded only when read (``explain``, the dashboard's "why"): a claim ranks every
    lane head and reads none of them, and formatting them was half of its policy's time."""

    candidate: Candidate
    tier: int  # 0 resource, 1 overdue, 2 preferred class, 3 other
    score: float  # effective priority minus switch levels (higher first)
    switch_s: float
    deferred: bool
    words: Callable[[], str]

    @property
    def reason(self) -> str:
        return self.words()


def effective_priority(c: Candidate, now: float, aging_step_s: float = DEFAULT_AGING_STEP_S) -> float:
    waited = max(0.0, now - c.created_at)
    return min(MAX_PRIORITY, c.priority + waited / aging_step_s)


def overdue_after_s(priority: int, aging_step_s: float = DEFAULT_AGING_STEP_S) -> float:
    """Claimable waiting after which a task outranks residency and batching (the aging promise)."""
    return max(0.0, (MAX_PRIORITY - priority) * aging_step_s)


def is_overdue(c: Candidate, now: float, aging_step_s: float = DEFAULT_AGING_STEP_S) -> bool:
    return now - c.created_at >= overdue_after_s(c.priority, aging_step_s)


def _fits(c: Candidate, worker: WorkerProfile) -> bool:
    if c.task_class not in worker.allowed_classes:
        return False
    if worker.capabilities is not None and cannot_run(c.task_class, c.model, worker.capabilities, kind=c.kind,
                                                      executor=c.executor, rig=c.rig):
        return False  # claimed, it would fail at once and take its dependents down
    return worker.hostable_models is None or c.model is None or c.model in worker.hostable_models


def _unfit_reason(c: Candidate, worker: WorkerProfile) -> str:
    if c.task_class in worker.allowed_classes and worker.capabilities is not None:
        why = cannot_run(c.task_class, c.model, worker.capabilities, kind=c.kind, executor=c.executor, rig=c.rig)
        if why:
            return why
    return "class or VRAM"


def decide(candidates: Sequence[Candidate], worker: WorkerProfile, rig: RigView, now: float,
           aging_step_s: float = DEFAULT_AGING_STEP_S, tuning: SwitchTuning = SwitchTuning()
           ) -> list[Decision]:
    """Every fitting candidate with its tier, score and reason, best first (deferred ones last)."""
    costs = rig.costs
    resident = worker.resident_model
    covered = _still_covered(resident, rig)  # the same for every candidate
    out: list[Decision] = []
    for c in candidates:
        if not _fits(c, worker):
            continue
        eff = effective_priority(c, now, aging_step_s)
        switch = costs.switch_s(resident, c.model)
        if c.task_class is TaskClass.RESOURCE:
            out.append(Decision(c, 0, eff, switch, False, lambda: "resource task: always first"))
            continue
        if is_overdue(c, now, aging_step_s):
            waited = now - c.created_at
            weighed = switch_weight_s(resident, c.model, rig, leaving_covered=covered, switch=switch)
            handicap = min(tuning.overdue_age_cap_steps * aging_step_s, tuning.overdue_age_per_switch_s * weighed)
            out.append(Decision(c, 1, -handicap, switch, False, partial(_overdue_words, waited, c.priority, aging_step_s)))
            continue
        tier = 2 if c.task_class in worker.preferred_classes else 3
        weighed = switch_weight_s(resident, c.model, rig, leaving_covered=covered, switch=switch)
        levels = tuning.max_levels * min(1.0, weighed / tuning.full_weight_s) if weighed > 0 else 0.0
        score = eff - levels
        deferred, why = _leave_to_others(c, resident, weighed, rig)
        words = partial(str, why) if why else partial(_ranked_words, c.model, eff, levels, switch, weighed)
        out.append(Decision(c, tier, score, switch, deferred, words))

    def key(d: Decision) -> tuple[int, int, float, int, float]:
        covered = rig.holders(d.candidate.model)
        if d.tier == 0:
            return (0, 0, 0.0, 0, d.candidate.created_at)
        if d.tier == 1:  # oldest first; score holds minus the switch handicap in seconds
            return (0, 1, 0.0, 0, d.candidate.created_at - d.score)
        # Among equals, a lane no one holds warm first (it has no other taker), then oldest.
        return (int(d.deferred), d.tier, -round(d.score, 6), 1 if covered else 0, d.candidate.created_at)

    return sorted(out, key=key)


def _overdue_words(waited: float, priority: int, aging_step_s: float) -> str:
    return (f"overdue: waited {waited:.0f} s >= (10 - {priority}) x {aging_step_s:.0f} s; "
            "taken before residency and batching")


def _ranked_words(model: str | None, eff: float, levels: float, switch: float, weighed: float) -> str:
    if switch == 0:
        return f"warm here ({model or 'no model needed'}): priority {eff:.1f}, no switch"
    return (f"needs {model}: priority {eff:.1f} minus {levels:.1f} for a "
            f"{switch:.0f} s switch ({weighed:.0f} s counting the reload it leaves behind)")


def _still_covered(resident: str | None, rig: RigView, other_holders: int | None = None) -> bool:
    """Would ``resident`` stay warm on enough other workers for its steady work if this worker
    left it? (One holder is enough for a model whose demand is unknown.)"""
    if resident is None:
        return True
    held = rig.holders(resident) if other_holders is None else other_holders
    return held >= rig.costs.holders_needed(resident)


def switch_weight_s(resident: str | None, wanted: str | None, rig: RigView, *, leaving_covered: bool,
                    switch: float | None = None) -> float:
    """Seconds a switch really costs: unload + load now, plus, when no other worker holds the
    model we leave, its reload later (the next task for it will need one). ``switch``: the
    unload + load already worked out by the caller."""
    costs = rig.costs
    if switch is None:
        switch = costs.switch_s(resident, wanted)
    if switch == 0 or resident is None or leaving_covered:
        return switch
    return switch + costs.load_s(resident) + costs.unload_s(wanted)


def _leave_to_others(c: Candidate, resident: str | None, weighed_s: float, rig: RigView) -> tuple[bool, str]:
    """Look-ahead: is this lane better left to another worker?

    Left when workers that hold its model warm would drain it before a switch here would
    even finish (lane depth x typical task time / holders, plus half a task when they are
    all busy), or when another idle worker can switch to it more cheaply than this one.
    """
    if weighed_s <= 0 or c.model is None:
        return False, ""
    costs = rig.costs
    idle = rig.warm_elsewhere.get(c.model, 0)
    busy = rig.busy_warm_elsewhere.get(c.model, 0)
    if idle + busy:
        task_s = costs.task_s(c.model)
        drain_s = c.lane_depth * task_s / (idle + busy) + (0.0 if idle else task_s / 2)
        if drain_s <= weighed_s:
            holders = f"{idle} idle" if idle else f"{busy} busy"
            return True, (f"left to {holders} worker(s) with {c.model} warm: {c.lane_depth} task(s) drain "
                          f"in ~{drain_s:.0f} s there, a switch here costs {weighed_s:.0f} s")
    cheapest = _cheapest_idle_switch(c.model, resident, rig)
    if cheapest is not None and cheapest < weighed_s:
        return True, (f"left to an idle worker that can switch to {c.model} in {cheapest:.0f} s "
                      f"(here: {weighed_s:.0f} s)")
    return False, ""


def _cheapest_idle_switch(model: str, resident: str | None, rig: RigView) -> float | None:
    best: float | None = None
    for peer in rig.idle_peers:
        if peer.hostable_models is not None and model not in peer.hostable_models:
            continue
        other = peer.resident_model
        if other == model:
            continue  # a warm holder: the drain rule above decides
        # Do enough workers besides that peer hold its model (other peers, busy workers, this one)?
        others = (rig.holders(other) - 1 + (1 if resident == other else 0)) if other else 0
        covered = _still_covered(other, rig, others)
        cost = switch_weight_s(other, model, rig, leaving_covered=covered)
        best = cost if best is None else min(best, cost)
    return best


def rank(candidates: Sequence[Candidate], worker: WorkerProfile, rig: RigView, now: float,
         aging_step_s: float = DEFAULT_AGING_STEP_S, tuning: SwitchTuning = SwitchTuning()
         ) -> list[Candidate]:
    """Candidates this worker should take, best first; lanes left to warm workers are dropped."""
    return [d.candidate for d in decide(candidates, worker, rig, now, aging_step_s, tuning) if not d.deferred]


def explain(candidates: Sequence[Candidate], worker: WorkerProfile, rig: RigView, now: float,
            aging_step_s: float = DEFAULT_AGING_STEP_S, tuning: SwitchTuning = SwitchTuning()) -> str:
    """One line per candidate, in this worker's order: what it would take and why the rest wait."""
    lines = []
    for i, d in enumerate(decide(candidates, worker, rig, now, aging_step_s, tuning)):
        mark = "skip" if d.deferred else ("next" if i == 0 else f"#{i + 1}")
        lines.append(f"{mark:>4}  {d.candidate.task_id} [{d.candidate.affinity} p{d.candidate.priority}]: {d.reason}")
    dropped = [c for c in candidates if not _fits(c, worker)]
    for c in dropped:
        lines.append(f"  --  {c.task_id} [{c.affinity}]: not runnable on {worker.worker_id} "
                     f"({_unfit_reason(c, worker)})")
    return "\n".join(lines)


def make_claim_policy(worker: WorkerProfile, rig: RigView | None = None,
                      aging_step_s: float = DEFAULT_AGING_STEP_S,
                      tuning: SwitchTuning = SwitchTuning()) -> ClaimPolicy:
    rig = rig or RigView()

    def policy(candidates: Sequence[Candidate], now: float) -> Sequence[Candidate]:
        return rank(candidates, worker, rig, now, aging_step_s, tuning)

    return policy
