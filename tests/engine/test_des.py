"""The rig simulator: determinism, dependencies, the lower bound, the starvation promise."""

from __future__ import annotations

import pytest

from engine.cli.main import main
from engine.sim.des import Simulator
from engine.sim.metrics import figures, lower_bound, percentile
from engine.sim.rigmodel import EMBEDDER, QWEN_7B, QWEN_14B, WHISPER, GroupSpec, RigModel, default_rig
from engine.sim.schedule_bench import POLICIES, aging_promise_s, promise_kept, run_one
from engine.sim.workloads import SimTask, Workload, make_workload


def simulate(wl: Workload, rig: RigModel, policy: str, seed: int = 1):
    return Simulator(rig, wl, POLICIES[policy], policy_name=policy, seed=seed).run()


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    rig = default_rig(5)
    runs = [simulate(make_workload("b", 150, seed, rig), rig, "galaxy", seed) for seed in (7, 7, 8)]
    trace = [[(tid, r.claim_s, r.group) for tid, r in sorted(run.records.items())] for run in runs]
    assert trace[0] == trace[1]
    assert trace[0] != trace[2]


def test_dependencies_start_after_their_parents_end() -> None:
    rig = default_rig(5)
    wl = make_workload("a", 120, 3, rig)
    run = simulate(wl, rig, "galaxy")
    for rec in run.records.values():
        for dep in rec.task.depends_on:
            assert rec.claim_s >= run.records[dep].end_s
        assert rec.start_s >= rec.claim_s >= rec.task.arrival_s


@pytest.mark.parametrize("gpus", [1, 3, 5])
@pytest.mark.parametrize("name", ["a", "b", "c"])
def test_lower_bound_never_exceeds_any_policy(name: str, gpus: int) -> None:
    rig = default_rig(gpus)
    wl = make_workload(name, 200, 2, rig)
    bound = lower_bound(wl, rig)
    assert bound > 0
    for policy in POLICIES:
        assert simulate(wl, rig, policy).makespan_s >= bound - 1e-6


def test_abab_queue_on_one_gpu_does_not_reload_every_task() -> None:
    rig = RigModel(groups=(GroupSpec("gpu0", (0,)),))
    # Same class, so the notes' class preference cannot batch them either; file order A,B,A,B.
    tasks = tuple(SimTask(f"t{i}", "x", WHISPER if i % 2 == 0 else EMBEDDER, 5, 30.0, arrival_s=float(i))
                  for i in range(8))
    wl = Workload("abab", "A,B,A,B", tasks)
    assert figures(simulate(wl, rig, "galaxy")).loads == 2
    assert figures(simulate(wl, rig, "baseline")).loads == 8


def test_warm_idle_gpu_takes_the_task_instead_of_a_cold_one() -> None:
    """Two GPUs: one warms the LLM with a first task; a later LLM task goes to it, not the cold one."""
    rig = RigModel(groups=(GroupSpec("gpu0", (0,)), GroupSpec("gpu1", (1,))))
    tasks = (SimTask("w", "llm", QWEN_7B, 5, 10.0), SimTask("e", "embed", EMBEDDER, 5, 5.0),
             SimTask("later", "llm", QWEN_7B, 5, 10.0, arrival_s=500.0))
    run = simulate(Workload("warm", "", tasks), rig, "galaxy")
    assert run.records["later"].group == run.records["w"].group
    assert figures(run).loads == 2


def test_starvation_workload_keeps_the_aging_promise() -> None:
    rig = default_rig(5)
    wl = make_workload("c", 300, 1, rig)
    galaxy, baseline = simulate(wl, rig, "galaxy"), simulate(wl, rig, "baseline")
    low = [r for r in galaxy.records.values() if r.task.priority == 1]
    assert low and all(r.wait_s <= aging_promise_s(1, rig, wl) for r in low)
    assert promise_kept(galaxy)
    # Without aging the notes' order lets them wait for the whole stream: the check can fail.
    assert not promise_kept(baseline)


def test_galaxy_beats_the_baseline_on_the_video_pipeline() -> None:
    rig = default_rig(5)
    wl = make_workload("a", 300, 1, rig)
    g, b = figures(run_one(wl, rig, "galaxy", 1)[0]), figures(run_one(wl, rig, "baseline", 1)[0])
    assert g.loads < b.loads
    assert g.makespan_s < b.makespan_s


def test_model_that_fits_no_group_is_refused_by_name() -> None:
    rig = default_rig(1)
    wl = Workload("x", "", (SimTask("big", "brain", QWEN_14B, 5, 10.0),))
    with pytest.raises(ValueError, match=r"big needs qwen2\.5:14b"):
        Simulator(rig, wl, POLICIES["galaxy"], policy_name="galaxy", seed=1)


def test_rig_groups_hold_what_their_vram_allows() -> None:
    rig = default_rig(5)
    assert [g.gpus for g in rig.groups] == [(0, 3), (1,), (2,), (4,)]
    assert rig.groups_for(QWEN_14B) == (0,)
    assert rig.groups_for(WHISPER) == (0, 1, 2, 3)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([1.0, 2.0], 95) == 2.0
    assert percentile([], 50) == 0.0


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "schedule", "--workload", "a", "--gpus", "3", "--tasks", "60", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "bound" in out and "galaxy" in out and "baseline" in out and "x LB" in out


def test_cli_rejects_zero_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "schedule", "--gpus", "0"]) == 2
    assert "--gpus" in capsys.readouterr().out


def test_benchmark_plan_file_simulates_like_the_pipeline() -> None:
    from pathlib import Path

    from engine.sim.plan_workload import workload_from_plan

    plan = Path(__file__).resolve().parents[2] / "bench" / "workloads" / "a-video.md"
    wl, rig = workload_from_plan(plan, 1, default_rig(5))
    assert len(wl.tasks) == 121
    aggregate = [t for t in wl.tasks if t.model == QWEN_14B]
    assert len(aggregate) == 1 and len(aggregate[0].depends_on) == 40
    again, _ = workload_from_plan(plan, 1, default_rig(5))
    assert again.tasks == wl.tasks  # run times drawn per task id: repeatable
    g, b = simulate(wl, rig, "galaxy"), simulate(wl, rig, "baseline")
    assert lower_bound(wl, rig) <= g.makespan_s < b.makespan_s


def test_cli_plan_that_needs_a_bigger_rig_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    plan = Path(__file__).resolve().parents[2] / "bench" / "workloads" / "a-video.md"
    assert main(["bench", "schedule", "--plan", str(plan), "--gpus", "1"]) == 1
    assert "qwen2.5:14b fits no GPU group" in capsys.readouterr().out


def test_lower_bound_by_hand() -> None:
    """2 GPUs; A, B (whisper, 100 s) then C (embeddings, 50 s) after both.
    Work (200 + 50 + 3 + 3) / 2 = 128; critical path 3 + 100 + 50 = 153; fan-in (200 + 3) / 2 + 50."""
    rig = RigModel(groups=(GroupSpec("gpu0", (0,)), GroupSpec("gpu1", (1,))))
    wl = Workload("hand", "", (SimTask("A", "t", WHISPER, 5, 100.0), SimTask("B", "t", WHISPER, 5, 100.0),
                               SimTask("C", "e", EMBEDDER, 5, 50.0, depends_on=("A", "B"))))
    assert lower_bound(wl, rig) == pytest.approx(153.0)


def test_lower_bound_counts_late_work_that_only_some_groups_can_hold() -> None:
    """3 groups, one of them the only host of Qwen 14B. Two 14B tasks (100 s each) arrive at
    t=1000: they run one after the other on that group, so nothing ends before 1200 s. Every
    other term is lower: all work (200 + 120) / 3, arrivals 1000 + 200 / 3, path 1000 + 100."""
    rig = RigModel(groups=(GroupSpec("brain", (0, 1)), GroupSpec("gpu2", (2,)), GroupSpec("gpu3", (3,))))
    wl = Workload("late", "", (SimTask("x", "brain", QWEN_14B, 5, 100.0, arrival_s=1000.0),
                               SimTask("y", "brain", QWEN_14B, 5, 100.0, arrival_s=1000.0)))
    assert lower_bound(wl, rig) == pytest.approx(1200.0)


def test_task_left_to_a_busy_warm_gpu_is_taken_once_overdue() -> None:
    """Look-ahead leaves a short LLM lane to the busy Qwen GPU; aging ends the wait on time."""
    from engine.scheduling.costs import ModelCost, SwitchCosts

    rig = RigModel(groups=(GroupSpec("gpu0", (0,)), GroupSpec("gpu1", (1,))))
    costs = SwitchCosts(models={QWEN_7B: ModelCost(105.0, 7.5, task_s=10.0), WHISPER: ModelCost(4.0, 1.5, 30.0)})
    tasks = (SimTask("long", "llm", QWEN_7B, 5, 3000.0), SimTask("wh", "transcribe", WHISPER, 5, 20.0),
             SimTask("x", "llm", QWEN_7B, 9, 10.0, arrival_s=100.0))
    run = Simulator(rig, Workload("t", "", tasks), POLICIES["galaxy"], policy_name="galaxy", seed=1,
                    costs=costs).run()
    x = run.records["x"]
    assert x.group == run.records["wh"].group  # the whisper GPU, after waiting
    assert x.claim_s == pytest.approx(100.0 + 300.0)  # overdue after (10 - 9) x 300 s
    baseline = simulate(Workload("t", "", tasks), rig, "baseline")
    assert baseline.records["x"].claim_s == pytest.approx(100.0)  # no look-ahead: switches at once


def test_mixed_stream_run_times_follow_the_notes_throughputs() -> None:
    """(b) is calibrated: every run time is work size / measured rate (docs/scheduling.md)."""
    from engine.sim.workloads import _MIX

    rig = default_rig(5)
    wl = make_workload("b", 2000, 1, rig)
    by_kind: dict[str, list[float]] = {}
    for t in wl.tasks:
        by_kind.setdefault(t.kind, []).append(t.duration_s)
    for kind, _, _, run in _MIX:
        lo, hi = run.range_s
        seen = by_kind[kind]
        assert all(lo <= d <= hi for d in seen), kind
        assert abs(sum(seen) / len(seen) - run.mean_s) < 0.1 * run.mean_s, kind
    assert _MIX[0][3].range_s == (10.0, 80.0)  # 200-800 tokens at 10-20 tokens/s
    assert _MIX[1][3].range_s == (15.0, 120.0)  # 5-30 min of audio at 15-20x realtime
    assert _MIX[2][3].range_s == (1.0, 10.0)  # 1,000-10,000 texts at 1,000/s


def test_work_share_feeds_the_policy_how_many_groups_a_model_keeps_busy() -> None:
    rig = default_rig(5)
    wl = make_workload("b", 400, 1, rig)
    share = wl.work_share()
    assert abs(sum(share.values()) - 1.0) < 1e-9
    costs = Simulator(rig, wl, POLICIES["galaxy"], policy_name="galaxy", seed=1, demand_window_s=None).costs
    assert costs.cost(QWEN_7B).workers_busy == pytest.approx(share[QWEN_7B] * len(rig.groups))
    assert costs.holders_needed(QWEN_7B) == 2  # ~42% of the work on 4 groups


def test_demand_window_counts_recent_work_per_second_and_forgets_old_work() -> None:
    from engine.scheduling.costs import SwitchCosts
    from engine.sim.demand import DemandWindow

    window = DemandWindow(600.0, {QWEN_7B: 60.0, WHISPER: 30.0}, n_groups=4)
    assert window.workers_busy(0.0) == {}
    for i in range(20):  # 20 Qwen tasks x 60 s over 10 minutes: 2 workers' worth
        window.add(i * 30.0, QWEN_7B)
    window.add(590.0, WHISPER)
    window.add(590.0, None)  # no model: no GPU demand
    busy = window.workers_busy(590.0)
    assert busy[QWEN_7B] == pytest.approx(2.0) and busy[WHISPER] == pytest.approx(0.05)
    assert window.costs(SwitchCosts(), 590.0).holders_needed(QWEN_7B) == 2
    later = window.workers_busy(590.0 + 600.0)  # only the whisper task is inside the window
    assert QWEN_7B not in later and later[WHISPER] == pytest.approx(0.05)
    assert window.costs(SwitchCosts(), 1190.0).holders_needed(QWEN_7B) == 1
    with pytest.raises(ValueError):
        DemandWindow(0.0, {}, 4)


def test_bound_row_shows_the_most_any_schedule_can_gain_over_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "schedule", "--workload", "b", "--gpus", "3", "--tasks", "80", "--seed", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    bound = next(line.split() for line in lines if line.startswith("b  bound"))
    baseline = next(line.split() for line in lines if line.startswith("b  baseline"))
    # bound row: wl, "bound", makespan, 1.00, ceiling = baseline makespan / bound
    assert float(bound[4]) == pytest.approx(float(baseline[3]) / float(bound[2]), abs=0.011)


def test_seed_ranges_cover_each_seed_run(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.sim.schedule_bench import run_bench

    assert main(["bench", "schedule", "--workload", "a", "--gpus", "3", "--tasks", "40", "--seeds", "1,2"]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("a   galaxy"))
    ratios = sorted(round(r.figures.makespan_s / r.lower_bound_s, 2)
                    for s in (1, 2) for r in run_bench(["a"], 3, s, 40) if r.figures.policy == "galaxy")
    assert row[2] == (f"{ratios[0]:.2f}" if ratios[0] == ratios[1] else f"{ratios[0]:.2f}-{ratios[1]:.2f}")


def test_seed_list_parsing_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli.cmd_bench import parse_seeds

    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    assert parse_seeds("4") == [4]
    with pytest.raises(ValueError):
        parse_seeds("3-1")
    assert main(["bench", "schedule", "--seeds", "a-b"]) == 2
    assert "--seeds" in capsys.readouterr().out


def test_baseline_reading_changes_what_the_notes_workers_prefer() -> None:
    from engine.sim.schedule_bench import baseline_policy

    rig = default_rig(3)
    wl = make_workload("b", 120, 3, rig)
    llm, script = (Simulator(rig, wl, baseline_policy(p), policy_name="baseline", seed=3).run() for p in ("llm", "script"))
    claimed_llm = [r.task.task_class.value for r in sorted(llm.records.values(), key=lambda r: r.claim_s)]
    claimed_script = [r.task.task_class.value for r in sorted(script.records.values(), key=lambda r: r.claim_s)]
    assert claimed_llm != claimed_script
    with pytest.raises(ValueError, match="unknown baseline preference"):
        baseline_policy("gpu")
