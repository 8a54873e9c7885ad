"""``galaxy supervise`` (the headless daemon) and the worker verbs
``galaxy pause|resume|drain|restart|unload <worker>``.

The verbs are commands as data: they drop a command file for the supervisor, wait briefly
for its ack in the snapshot and print the outcome (exit 0 ok, 1 refused/error, 3 no ack).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.logsetup import add_log_level_arg

WORKER_VERBS = {
    "pause": "take nothing new; the running task continues",
    "resume": "take work again (starts a stopped or fatal worker)",
    "drain": "finish the running task, then stop",
    "restart": "stop the worker (its task is handed back) and start it again",
    "unload": "force the worker's model off its GPU now",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("supervise", help="run the supervisor (headless; JSON log lines on stderr)",
                       description="Start one worker per GPU group, watch them, write snapshots, apply "
                                   "commands. SIGTERM stops it cleanly: workers finish or hand back their tasks.")
    p.add_argument("--sim", action="store_true", help="simulated rig (default 5 x GTX 1060 6GB) with "
                                                      "simulated Ollama servers; workers are real processes")
    p.add_argument("--gpus", type=int, default=None, help="--sim: number of simulated GPUs")
    p.add_argument("--tick", type=float, default=None, help="seconds between ticks (default: snapshot_interval_s)")
    p.add_argument("--demo", action="store_true", help="--sim only: keep the rig busy with a steady mixed stream "
                                                       "(the example plan, generated work, a simulated cloud model)")
    p.add_argument("--run-for", type=float, default=None, help=argparse.SUPPRESS)  # tests/bench: stop after S
    p.add_argument("--log-file", type=Path, default=None,
                   help="JSON log lines to this file, rotated by size ([log] in galaxy.toml); default: stderr "
                        "(plain lines for journald under systemd)")
    add_log_level_arg(p)
    p.set_defaults(func=run_supervise)
    for verb, what in WORKER_VERBS.items():
        v = sub.add_parser(verb, help=f"worker: {what}", description=f"{verb} a worker: {what}.")
        v.add_argument("worker", help="worker id (the group name in galaxy.toml)")
        v.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the supervisor's ack")
        v.add_argument("--rig", default=None, help="the worker's rig, on a shared (Redis) store (default: this "
                                                   "rig, [rig] name); `galaxy status` lists the rigs and workers")
        v.set_defaults(func=run_worker_verb, verb=verb)


# ---------------------------------------------------------------- galaxy supervise

def run_supervise(args: argparse.Namespace) -> int:
    """Parse the arguments; the daemon itself is engine.supervisor.main.run_supervisor."""
    from engine.config import resolve_config_path
    from engine.supervisor.main import SupervisorLaunch, SupervisorStartError, run_supervisor

    launch = SupervisorLaunch(root=Path(args.root), config=resolve_config_path(args.config), sim=bool(args.sim),
                              gpus=args.gpus, tick_s=args.tick, demo=bool(getattr(args, "demo", False)),
                              run_for_s=args.run_for, log_file=args.log_file, log_level=args.log_level)
    try:
        return run_supervisor(launch)
    except SupervisorStartError as exc:
        for message in exc.messages:
            print(f"galaxy supervise: {message}", file=sys.stderr)
        return exc.exit_code


# ---------------------------------------------------------------- worker verbs

def run_worker_verb(args: argparse.Namespace) -> int:
    from engine.cli.idcheck import BAD_ID_EXIT, bad_id
    from engine.cli.store_channels import (
        StoreOpenError,
        open_cli_channels,
        report_store_error,
        supervisor_running,
        wait_ack,
    )
    from engine.commands import CommandKind, default_source, make_command
    from engine.ids import IdKind
    from engine.paths import RigPaths

    if bad_id(IdKind.WORKER, args.worker):
        return BAD_ID_EXIT
    paths = RigPaths(args.root)
    try:
        channels = open_cli_channels(args)
    except StoreOpenError as exc:
        return report_store_error(exc)
    rig = args.rig or channels.rig
    try:
        if rig != channels.rig and channels.kind == "file":
            print(f"galaxy {args.verb}: --rig {rig}: the file store holds one rig ({channels.rig}); "
                  "other rigs share a Redis store (docs/cluster.md)", file=sys.stderr)
            return 2
        cmd = make_command(CommandKind(args.verb), args.worker, source=default_source("cli"))
        channels.commands_for(rig).send(cmd)  # ValueError: not a rig name
        if not supervisor_running(channels, paths, time.time(), rig):
            where = paths.root if channels.kind == "file" else f"rig {rig}"
            print(f"{args.verb} {args.worker}: sent, but no supervisor is running on {where}; "
                  "it applies when one starts")
            return 3
        ack = wait_ack(channels, cmd.command_id, args.wait, rig=rig)
    except ValueError as exc:
        print(f"galaxy {args.verb}: --rig: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # StoreUnavailable: the store stopped answering
        print(f"galaxy {args.verb}: {exc}", file=sys.stderr)
        return 2
    finally:
        channels.close()
    if ack is not None:
        print(f"{args.verb} {args.worker}: {ack.outcome}: {ack.message}")
        return 0 if ack.outcome == "ok" else 1
    print(f"{args.verb} {args.worker}: sent (command {cmd.command_id}); no ack within {args.wait:g}s")
    return 3
