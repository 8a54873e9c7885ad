"""``galaxy task show ID [--json]``: one task from the shell, as the dashboard's detail shows it.

The id is checked (engine.ids) before any path is built; the report comes from
``engine.task_report`` (the dashboard reads the same), so a running task shows the output
its worker is streaming and a finished one its result tail.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.cli.usage import help_and_fail
from engine.paths import RigPaths

NOT_FOUND_EXIT = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("task", help="one task: state, attempts, output tail (task show ID)",
                       description="Look at one task.")
    verbs = p.add_subparsers(dest="task_verb", metavar="VERB")
    s = verbs.add_parser("show", help="state, attempts and output tail (live while it runs)",
                         description="Show one task: where it is, its attempts and its output tail. "
                                     "While it runs, the tail is the partial output its worker publishes.")
    s.add_argument("task_id")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=run_show)
    p.set_defaults(func=help_and_fail(p))


def run_show(args: argparse.Namespace) -> int:
    from engine.cli.idcheck import BAD_ID_EXIT, bad_id
    from engine.ids import IdKind

    if bad_id(IdKind.TASK, args.task_id):
        return BAD_ID_EXIT  # before the queue (and its folders) is even opened
    paths = RigPaths(args.root)
    if not paths.tasks.is_dir():
        print(f"galaxy: no rig at {args.root} (no tasks/ folder): check --root or $GALAXY_ROOT", file=sys.stderr)
        return 2
    from engine.queue.filequeue import FileQueue
    from engine.task_report import load_report, report_lines

    queue = FileQueue(paths, use_inotify=False)
    try:
        report = load_report(queue, paths, args.task_id)
    finally:
        queue.close()
    if report is None:
        print(f"galaxy: no task {args.task_id} in {paths.tasks}", file=sys.stderr)
        return NOT_FOUND_EXIT
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report_lines(report, time.time())))
    return 0
