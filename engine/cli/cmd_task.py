"""``galaxy task show ID [--json]``: one task from the shell, as the dashboard's detail shows it.

The id is checked (engine.ids) before any path is built; the report comes from
``engine.task_report`` (the dashboard reads the same), so a running task shows the output
its worker is streaming and a finished one its result tail. ``--follow`` keeps reading
the same report and prints what the tail adds, like ``tail -f``, until the task ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.cli.usage import help_and_fail
from engine.paths import RigPaths

if TYPE_CHECKING:
    from engine.task_report import TaskReport

NOT_FOUND_EXIT = 1
FOLLOW_S = 1.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("task", help="one task: state, attempts, output tail (task show ID)",
                       description="Look at one task.")
    verbs = p.add_subparsers(dest="task_verb", metavar="VERB")
    s = verbs.add_parser("show", help="state, attempts and output tail (live while it runs)",
                         description="Show one task: where it is, its attempts and its output tail. "
                                     "While it runs, the tail is the partial output its worker publishes.")
    s.add_argument("task_id")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new output (and state changes) until the task completes or fails")
    s.set_defaults(func=run_show)
    p.set_defaults(func=help_and_fail(p))


def run_show(args: argparse.Namespace) -> int:
    from engine.cli.idcheck import BAD_ID_EXIT, bad_id
    from engine.ids import IdKind

    if args.json and args.follow:
        print("galaxy: --follow prints text as it comes; use it without --json", file=sys.stderr)
        return 2
    if bad_id(IdKind.TASK, args.task_id):
        return BAD_ID_EXIT  # before the queue (and its folders) is even opened
    paths = RigPaths(args.root)
    if not paths.tasks.is_dir():
        print(f"galaxy: no rig at {args.root} (no tasks/ folder): check --root or $GALAXY_ROOT", file=sys.stderr)
        return 2
    from engine.cli.store_channels import StoreOpenError
    from engine.cli.store_queue import open_cli_queue
    from engine.task_report import load_report, report_lines

    try:
        queue = open_cli_queue(args)  # the store galaxy.toml or $GALAXY_STORE names
    except StoreOpenError as exc:
        print(f"galaxy: {exc}", file=sys.stderr)
        return 2
    try:
        report = load_report(queue, paths, args.task_id)
        if report is None:
            print(f"galaxy: no task {args.task_id} in {paths.tasks}", file=sys.stderr)
            return NOT_FOUND_EXIT
        if args.json:
            print(json.dumps(report.to_dict(), indent=2))
        elif args.follow:
            print("\n".join(report_lines(report, time.time(), with_tail=False)))
            return follow(report, lambda: load_report(queue, paths, args.task_id), time.sleep)
        else:
            print("\n".join(report_lines(report, time.time())))
    finally:
        queue.close()
    return 0


def follow(first: TaskReport, reload: Callable[[], TaskReport | None], sleep: Callable[[float], None],
           every_s: float = FOLLOW_S) -> int:
    """Print the output as it grows and each state change until the task completes or fails.

    Exit status: 0 when it completed, 1 when it failed or left the queue (Ctrl-C: 130)."""
    from engine.task_report import TaskState, new_output
    from engine.textsafe import one_line, terminal_safe

    def write(text: str) -> None:
        sys.stdout.write(terminal_safe(text))
        sys.stdout.flush()

    report, seen = first, first.output_tail
    print("output (following; Ctrl-C stops):")
    write(seen)
    try:
        while report.state not in (TaskState.COMPLETE, TaskState.FAILED):
            sleep(every_s)
            later = reload()
            if later is None:
                print(f"\n-- task {first.task.task_id} is no longer in the queue")
                return NOT_FOUND_EXIT
            if later.state is not report.state or later.worker_id != report.worker_id:
                print(f"\n-- {later.state.value}" + (f" on {later.worker_id}" if later.worker_id else ""))
            if later.output_tail:  # a running task whose worker has not published yet keeps what was seen
                added, gap = new_output(seen, later.output_tail)
                if gap and seen:
                    print("\n-- (more output than one tail holds came in between; its last part:)")
                write(added)
                seen = later.output_tail
            report = later
    except KeyboardInterrupt:
        print()
        return 130
    if report.state is TaskState.FAILED:
        print(f"\n-- failed: {one_line(report.task.error) or '-'}")
        return 1
    return 0
