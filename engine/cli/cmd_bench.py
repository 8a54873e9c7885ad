"""``galaxy bench schedule``: the scheduling benchmark on a simulated rig (no GPU needed)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from engine.cli.usage import help_and_fail

WORKLOADS = ("a", "b", "c")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks that print figures")
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCH")
    sched = sub.add_parser("schedule", help="simulate the claim policies on a rig model against a lower bound")
    sched.add_argument("--workload", choices=(*WORKLOADS, "all"), default="all",
                       help="a: video pipeline, b: mixed stream, c: starvation (default: all)")
    sched.add_argument("--gpus", type=int, default=5, help="GPUs in the simulated rig (default 5)")
    sched.add_argument("--seed", type=int, default=1)
    sched.add_argument("--seeds", default=None, metavar="A-B",
                       help="run seeds A..B (or a list: 1,3,5) and print ranges over them")
    sched.add_argument("--baseline-prefers", choices=("llm", "script", "none"), default="llm",
                       help="the class the notes' workers prefer (default llm: their workers run Qwen)")
    sched.add_argument("--tasks", type=int, default=None, help="tasks per workload (default: a 1000, b 1000, c 600)")
    sched.add_argument("--load", type=float, default=None,
                       help="arrival rate as a fraction of the rig: (b) utilisation (default 0.9), "
                            "(c) overload (default 1.1)")
    sched.add_argument("--plan", type=Path, default=None,
                       help="simulate a plan file's tasks instead of the built-in workloads")
    sched.add_argument("--json", action="store_true", help="the figures as JSON (one object per run)")
    sched.set_defaults(func=_schedule)
    bench.set_defaults(func=help_and_fail(bench))


def _schedule(args: argparse.Namespace) -> int:
    from engine.sim.schedule_bench import format_table, run_bench

    if args.gpus < 1:
        print(f"--gpus must be at least 1, got {args.gpus}")
        return 2
    if args.tasks is not None and args.tasks < 1:
        print(f"--tasks must be at least 1, got {args.tasks}")
        return 2
    if args.load is not None and args.load <= 0:
        print(f"--load must be positive, got {args.load}")
        return 2
    if args.plan is not None:
        from engine.plans import PlanError
        from engine.sim.schedule_bench import run_plan_bench

        try:
            rows = run_plan_bench(args.plan, args.gpus, args.seed)
        except PlanError as exc:
            print(exc)
            return 1
        except ValueError as exc:  # e.g. a model that fits no GPU group of this rig
            print(f"{args.plan}: {exc}")
            return 1
        return _print_rows(args, rows, format_table(rows, args.gpus, args.seed))
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    if args.seeds is not None:
        from engine.sim.schedule_bench import format_seed_summary

        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as exc:
            print(f"--seeds: {exc}")
            return 2
        by_seed = {s: run_bench(names, args.gpus, s, args.tasks, load=args.load,
                                baseline_prefers=args.baseline_prefers) for s in seeds}
        if getattr(args, "json", False):
            print(json.dumps({"gpus": args.gpus, "seeds": {str(s): [_row(r) for r in rows]
                                                           for s, rows in by_seed.items()}}, indent=2))
            return 0
        print(format_seed_summary(by_seed, args.gpus))
        return 0
    rows = run_bench(names, args.gpus, args.seed, args.tasks, load=args.load, baseline_prefers=args.baseline_prefers)
    return _print_rows(args, rows, format_table(rows, args.gpus, args.seed))


def _row(row: Any) -> dict[str, Any]:
    return dataclasses.asdict(row)


def _print_rows(args: argparse.Namespace, rows: list[Any], table: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"gpus": args.gpus, "seed": args.seed, "rows": [_row(r) for r in rows]}, indent=2,
                         default=str))
    else:
        print(table)
    return 0


def parse_seeds(text: str) -> list[int]:
    """``1-5`` or ``1,3,5`` (or both: ``1-3,7``)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"expected seeds like 1-5 or 1,3,5, got {text!r}") from None
        if last < first:
            raise ValueError(f"empty range {part!r}")
        seeds.extend(range(first, last + 1))
    if len(seeds) > 100:
        raise ValueError(f"{len(seeds)} seeds; at most 100")
    return sorted(set(seeds))
