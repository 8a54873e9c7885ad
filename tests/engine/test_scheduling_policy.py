"""Decision tables for the residency-aware claim policy (engine.scheduling.policy)."""

from __future__ import annotations

from engine.model import TaskClass
from engine.queue.protocol import Candidate
from engine.scheduling.costs import ModelCost, SwitchCosts
from engine.scheduling.policy import (
    IdlePeer,
    RigView,
    WorkerProfile,
    decide,
    explain,
    is_overdue,
    make_claim_policy,
    overdue_after_s,
    rank,
)

Q7, Q14, WH, EMB = "qwen2.5:7b", "qwen2.5:14b", "whisper-small.en", "all-mpnet-base-v2"
NOW = 10_000.0


def cand(tid: str, model: str | None, prio: int = 5, age: float = 0.0, depth: int = 1,
         cls: TaskClass | None = None) -> Candidate:
    if cls is None:
        cls = TaskClass.LLM if model in (Q7, Q14) else (TaskClass.SCRIPT if model else TaskClass.CPU)
    return Candidate(tid, cls, model, prio, NOW - age, lane_depth=depth)


def worker(resident: str | None = None, **kw) -> WorkerProfile:
    return WorkerProfile("gpu1", resident_model=resident, **kw)


def ids(cs) -> list[str]:
    return [c.task_id for c in cs]


def test_warm_lane_beats_older_equal_priority_cold_lane() -> None:
    out = rank([cand("wh", WH, 5, age=60), cand("llm", Q7, 5, age=10)], worker(Q7), RigView(), NOW)
    assert ids(out) == ["llm", "wh"]


def test_warm_lane_beats_slightly_higher_cold_lane_but_not_much_higher() -> None:
    slightly = rank([cand("llm", Q7, 6), cand("wh", WH, 5)], worker(WH), RigView(), NOW)
    assert ids(slightly)[0] == "wh"
    much = rank([cand("llm", Q7, 9), cand("wh", WH, 5)], worker(WH), RigView(), NOW)
    assert ids(much)[0] == "llm"


def test_abab_queue_keeps_the_warm_model() -> None:
    """Lanes A and B interleaved by age: after taking A the worker stays on A."""
    a_head, b_head = cand("A2", Q7, 5, age=100), cand("B1", WH, 5, age=200)
    assert ids(rank([b_head, a_head], worker(Q7), RigView(), NOW))[0] == "A2"
    assert ids(rank([b_head, a_head], worker(WH), RigView(), NOW))[0] == "B1"


def test_resource_task_first_even_against_warm_and_overdue_work() -> None:
    res = cand("load", None, 7, cls=TaskClass.RESOURCE)
    overdue = cand("old", WH, 1, age=overdue_after_s(1) + 1)
    out = rank([overdue, cand("warm", Q7, 9), res], worker(Q7), RigView(), NOW)
    assert ids(out)[0] == "load"


def test_aging_overrides_residency_exactly_at_saturation() -> None:
    limit = overdue_after_s(1)  # (10 - 1) x 300 s
    assert limit == 2700.0
    before = cand("low", WH, 1, age=limit - 1)
    at = cand("low", WH, 1, age=limit)
    warm = cand("warm", Q7, 9)
    assert not is_overdue(before, NOW) and is_overdue(at, NOW)
    assert ids(rank([before, warm], worker(Q7), RigView(), NOW))[0] == "warm"
    assert ids(rank([at, warm], worker(Q7), RigView(), NOW))[0] == "low"


def test_overdue_task_is_never_left_to_a_warm_worker() -> None:
    overdue = cand("low", Q7, 1, age=overdue_after_s(1))
    out = rank([overdue], worker(WH), RigView(warm_elsewhere={Q7: 1}), NOW)
    assert ids(out) == ["low"]


def test_older_overdue_first_among_overdue() -> None:
    older = cand("older", Q7, 5, age=overdue_after_s(5) + 900)
    younger = cand("younger", Q7, 5, age=overdue_after_s(5) + 100)
    assert ids(rank([younger, older], worker(Q7), RigView(), NOW)) == ["older", "younger"]


def test_look_ahead_leaves_a_shallow_lane_to_an_idle_warm_worker() -> None:
    lane = cand("llm", Q7, 5, depth=1)
    rig = RigView(warm_elsewhere={Q7: 1})
    assert rank([lane], worker(WH), rig, NOW) == []
    assert "left to 1 idle worker" in explain([lane], worker(WH), rig, NOW)
    # Without a warm worker elsewhere the cold worker takes it.
    assert ids(rank([lane], worker(WH), RigView(), NOW)) == ["llm"]


def test_look_ahead_takes_a_deep_lane_as_a_second_gpu() -> None:
    deep = cand("llm", Q7, 5, depth=20)  # 20 x 60 s on one warm worker >> a 110 s load
    assert ids(rank([deep], worker(WH), RigView(warm_elsewhere={Q7: 1}), NOW)) == ["llm"]


def test_look_ahead_leaves_a_lane_to_an_idle_peer_that_switches_cheaper() -> None:
    lane = cand("wh", WH, 5)
    rig = RigView(idle_peers=(IdlePeer(EMB),))  # embedder -> whisper is seconds; 7B -> whisper costs a reload
    assert rank([lane], worker(Q7), rig, NOW) == []
    # A peer that cannot hold the model (VRAM) is no reason to wait.
    big = cand("brain", Q14, 5)
    rig = RigView(idle_peers=(IdlePeer(None, frozenset({Q7, WH, EMB})),))
    assert ids(rank([big], worker(Q7), rig, NOW)) == ["brain"]


def test_switch_costs_are_an_input() -> None:
    free_loads = SwitchCosts(models={Q7: ModelCost(1.0, 0.0), WH: ModelCost(1.0, 0.0)})
    pair = [cand("llm", Q7, 6), cand("wh", WH, 5)]
    assert ids(rank(pair, worker(WH), RigView(), NOW))[0] == "wh"
    assert ids(rank(pair, worker(WH), RigView(costs=free_loads), NOW))[0] == "llm"


def test_model_that_does_not_fit_and_disallowed_class_are_dropped() -> None:
    w = worker(None, hostable_models=frozenset({Q7, WH}), allowed_classes=(TaskClass.LLM, TaskClass.SCRIPT))
    out = rank([cand("big", Q14), cand("sh", None), cand("ok", Q7)], w, RigView(), NOW)
    assert ids(out) == ["ok"]


def test_preferred_class_still_ranks_first_among_fresh_work() -> None:
    w = worker(None, preferred_classes=(TaskClass.SCRIPT,))
    out = make_claim_policy(w)([cand("llm", Q7, 8), cand("wh", WH, 5)], NOW)
    assert ids(out)[0] == "wh"


def test_aging_raises_effective_priority_over_time() -> None:
    young, old = cand("young", WH, 5, age=0), cand("old", WH, 3, age=3 * 300)
    assert ids(rank([young, old], worker(WH), RigView(), NOW)) == ["old", "young"]


def test_decide_gives_every_candidate_a_reason() -> None:
    ds = decide([cand("a", Q7), cand("b", WH)], worker(Q7), RigView(), NOW)
    assert [d.candidate.task_id for d in ds] == ["a", "b"]
    assert "warm here" in ds[0].reason and "switch" in ds[1].reason


def test_explain_names_the_overdue_rule_and_unrunnable_tasks() -> None:
    w = worker(Q7, hostable_models=frozenset({Q7, WH}))
    text = explain([cand("old", WH, 2, age=overdue_after_s(2) + 5), cand("big", Q14)], w, RigView(), NOW)
    lines = text.splitlines()
    assert lines[0].startswith("next") and "overdue" in lines[0]
    assert "not runnable on gpu1" in lines[-1]


def test_deep_lane_gets_a_second_gpu_even_with_an_idle_warm_peer() -> None:
    deep = cand("llm", Q7, 5, depth=20)
    rig = RigView(warm_elsewhere={Q7: 1}, idle_peers=(IdlePeer(Q7),))
    assert ids(rank([deep], worker(WH), rig, NOW)) == ["llm"]


def _costs_with_qwen_demand(workers_busy: float) -> SwitchCosts:
    models = dict(SwitchCosts().models)
    models[Q7] = ModelCost(105.0, 7.5, task_s=35.0, workers_busy=workers_busy)
    return SwitchCosts(models=models)


def test_leaving_a_model_its_steady_work_needs_here_charges_the_reload() -> None:
    """Qwen's share of the work keeps 1.8 workers busy: with only one other holder, leaving it for
    a slightly higher whisper lane leaves a reload behind, so the warm Qwen lane stays first.
    With its demand unknown (or below one worker), the other holder covers it and whisper wins."""
    lanes = [cand("wh", WH, 6), cand("llm", Q7, 5)]
    one_other = {Q7: 1}
    covered = RigView(busy_warm_elsewhere=one_other, costs=_costs_with_qwen_demand(0.0))
    assert ids(rank(lanes, worker(Q7), covered, NOW))[0] == "wh"
    needed = RigView(busy_warm_elsewhere=one_other, costs=_costs_with_qwen_demand(1.8))
    assert ids(rank(lanes, worker(Q7), needed, NOW))[0] == "llm"
    two_others = RigView(busy_warm_elsewhere={Q7: 2}, costs=_costs_with_qwen_demand(1.8))
    assert ids(rank(lanes, worker(Q7), two_others, NOW))[0] == "wh"


def test_holders_needed_rounds_demand_up_and_is_at_least_one() -> None:
    assert _costs_with_qwen_demand(0.0).holders_needed(Q7) == 1
    assert _costs_with_qwen_demand(1.0).holders_needed(Q7) == 1
    assert _costs_with_qwen_demand(1.8).holders_needed(Q7) == 2
    assert SwitchCosts().holders_needed(None) == 1
