"""`galaxy plan check FILE` and `galaxy plan show FILE`: read a plan, change nothing.

check prints every error as ``file:line: message`` (exit 1), or the auto-fix notes and a
one-line summary (exit 0). show prints the tasks the plan would queue (``--json`` for scripts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.usage import help_and_fail

if TYPE_CHECKING:
    from engine.model import Task


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = subparsers.add_parser("plan", help="check or show a Markdown plan without queueing it",
                                 description="Read a Markdown plan (docs/plan-format.md) without side effects.")
    sub = plan.add_subparsers(dest="plan_command", metavar="ACTION")
    check = sub.add_parser("check", help="validate a plan: every error with its line; exit 1 on errors")
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="ok, errors, notes and counts as JSON")
    check.set_defaults(func=run_check)
    show = sub.add_parser("show", help="list the tasks a plan would queue")
    show.add_argument("file", type=Path)
    show.add_argument("--json", action="store_true", help="the task records as JSON")
    show.set_defaults(func=run_show)
    plan.set_defaults(func=help_and_fail(plan))


def _load(path: Path, root: Path) -> tuple[Path, list[Task] | None]:
    """The plan's tasks, or None after printing every error (to stderr)."""
    from engine.plans import PlanError, load_plan, resolve_plan_path

    path = resolve_plan_path(path, root)
    try:
        return path, load_plan(path, now=time.time(), source="cli")
    except PlanError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        n = len(exc.errors)
        print(f"{path}: {n} error{'s' if n != 1 else ''}; nothing would be queued", file=sys.stderr)
        return path, None


def _summary(tasks: list[Task]) -> str:
    kinds = Counter(t.type.value for t in tasks)
    parts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return f"{len(tasks)} task{'s' if len(tasks) != 1 else ''} ({parts})"


def run_check(args: argparse.Namespace) -> int:
    from engine.plans import plan_notes

    if getattr(args, "json", False):
        return _check_json(args)
    path, tasks = _load(args.file, args.root)
    if tasks is None:
        return 1
    for note in plan_notes(tasks):
        print(note)
    print(f"{path}: ok, {_summary(tasks)}")
    return 0


def _check_json(args: argparse.Namespace) -> int:
    """``plan check --json``: {"ok", "path", "errors", "notes", "tasks", "by_type"}; exit 1 on errors."""
    from engine.plans import PlanError, load_plan, plan_notes, resolve_plan_path

    path = resolve_plan_path(args.file, args.root)
    try:
        tasks = load_plan(path, now=time.time(), source="cli")
    except PlanError as exc:
        print(json.dumps({"ok": False, "path": str(path), "errors": list(exc.errors), "notes": [], "tasks": 0,
                          "by_type": {}}, indent=2))
        return 1
    print(json.dumps({"ok": True, "path": str(path), "errors": [], "notes": plan_notes(tasks), "tasks": len(tasks),
                      "by_type": dict(sorted(Counter(t.type.value for t in tasks).items()))}, indent=2))
    return 0


def run_show(args: argparse.Namespace) -> int:
    from engine.plans import plan_notes

    _path, tasks = _load(args.file, args.root)
    if tasks is None:
        return 1
    if args.json:
        print(json.dumps([t.to_dict() for t in tasks], indent=2))
        return 0
    names = {t.task_id: t.name for t in tasks}
    rows = [("NAME", "TYPE", "CLASS", "PRI", "MODEL", "LINE", "WAITS FOR")]
    for t in tasks:
        deps = ", ".join(names.get(d, d) for d in t.depends_on) or "-"
        line = (t.plan or "").rsplit(":", 1)[-1]
        rows.append((t.name, t.type.value, t.task_class.value, str(t.priority), t.model or "-", line, deps))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print(f"\nbatch {tasks[0].batch_id} (a new batch id is made on each submit); {_summary(tasks)}")
    for note in plan_notes(tasks):
        print(note)
    return 0
