"""``galaxy supervise`` (the headless daemon) and the worker verbs
``galaxy pause|resume|drain|restart|unload <worker>``.

The verbs are commands as data: they drop a command file for the supervisor, wait briefly
for its ack in the snapshot and print the outcome (exit 0 ok, 1 refused/error, 3 no ack).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from engine.logsetup import EventsRotator, add_log_level_arg, log_fields, setup_logging

WORKER_VERBS = {
    "pause": "take nothing new; the running task continues",
    "resume": "take work again (starts a stopped or fatal worker)",
    "drain": "finish the running task, then stop",
    "restart": "stop the worker (its task is handed back) and start it again",
    "unload": "force the worker's model off its GPU now",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
        v.set_defaults(func=run_worker_verb, verb=verb)


# ---------------------------------------------------------------- galaxy supervise

_LOG = logging.getLogger("galaxy.supervisor")


def _json_log(msg: str, **fields: Any) -> None:
    """The supervisor's log calls go through ``logging`` (engine.logsetup decides where)."""
    level = logging.WARNING if fields.get("error") is not None else logging.INFO
    _LOG.log(level, msg, extra=log_fields(**fields))


def _events_tail(path: Path):  # type: ignore[no-untyped-def]
    from engine.event_views import tail_event_views

    return lambda n: tail_event_views(path, n, max_bytes=64_000)


def _cloud_tier(config: Any, paths: Any, queue: Any, endpoints: Any) -> Any:
    """Routing health, breakers and operator-approved escalation (see docs/routing.md)."""
    from engine.escalation.wiring import build_cloud_tier
    from engine.events import EventLog
    from engine.supervisor.command_processor import Outcome

    events = EventLog(paths.events).bind(worker_id="supervisor")

    def on_event(kind: str, data: dict[str, Any]) -> None:
        _json_log(kind, **data)
        task_id = data.pop("task_id", None)
        events.emit(kind, task_id=task_id if isinstance(task_id, str) else None,
                    **{k: v for k, v in data.items() if k not in ("error",)},
                    error=str(data["error"]) if data.get("error") else None)

    resolve = getattr(queue, "resolve_failed", None) or (lambda task_id, result, now: False)
    return build_cloud_tier(config, paths, queue, resolve, endpoints=endpoints, outcome=Outcome,
                            on_event=on_event)


def run_supervise(args: argparse.Namespace) -> int:
    from engine.clock import SystemClock
    from engine.config import (ConfigError, ConfigErrors, default_config, load_config, resolve_config_path,
                               unseen_gpu_errors)
    from engine.paths import RigPaths
    from engine.queue.filequeue import FileQueue
    from engine.supervisor.launcher import SubprocessLauncher
    from engine.supervisor.pidfile import PidFile, SupervisorAlreadyRunning
    from engine.supervisor.sim_driver import SimRigDriver, make_sim_rig
    from engine.supervisor.supervisor import Supervisor
    from engine.telemetry.detect import detect_probe
    from engine.telemetry.host import HostProbe

    if getattr(args, "demo", False) and not args.sim:
        print("galaxy supervise: --demo needs --sim (it submits made-up work)", file=sys.stderr)
        return 2
    clock = SystemClock()
    paths = RigPaths(args.root).ensure()
    cfg_path = resolve_config_path(args.config)
    try:
        if args.sim:
            config = load_config(cfg_path, gpu_count=args.gpus if args.gpus is not None else 5)
            if config.source is None and args.gpus is None:
                config = default_config(config.sim.gpus)
            probe: Any = make_sim_rig(config, clock, gpu_count=args.gpus)
        else:
            probe = detect_probe(simulated=False)
            config = load_config(cfg_path, gpu_count=probe.status().gpu_count)
        status = probe.status()  # a group naming a GPU NVML (or the simulated rig) does not see is refused
        unseen = unseen_gpu_errors(config, status.gpu_count, status.kind)
        if unseen:
            raise unseen[0] if len(unseen) == 1 else ConfigErrors(unseen)
    except ConfigError as exc:
        for one in exc.errors:  # every problem at once, each with its line
            print(f"galaxy supervise: {one}", file=sys.stderr)
        return 2
    if args.log_level:
        config = dataclasses.replace(config, log=dataclasses.replace(config.log, level=args.log_level))
    setup_logging(level=config.log.level, log_file=args.log_file, config=config.log)
    rotator = EventsRotator(paths.events, config.log.events_max_bytes, config.log.events_backups)
    pidfile = PidFile(paths.supervisor_pid)
    try:
        pidfile.acquire()
    except SupervisorAlreadyRunning as exc:
        print(f"galaxy supervise: {exc}", file=sys.stderr)
        return 1
    from engine.service import note_service_run

    service = note_service_run(paths.state, os.environ, os.getpid())  # `galaxy up` then just attaches
    if service:
        _json_log("supervisor runs as a systemd service", unit=service["unit"])
    driver = None
    metrics: Any = None  # engine.metrics.server.MetricsServer
    endpoints = None
    demo_cloud = None
    feeder = None
    stop = {"signal": None}

    def on_signal(signum: int, _frame: Any) -> None:
        stop["signal"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    queue = FileQueue(paths)
    try:
        if args.sim:
            driver = SimRigDriver(probe)
            endpoints = driver.start_servers(config.groups, clock=clock)
        if getattr(args, "demo", False):
            from engine.sim.demo_wiring import make_feeder, with_sim_cloud

            config, demo_cloud = with_sim_cloud(config)
            feeder = make_feeder(paths, queue, _json_log)
            _json_log("demo: feeding the rig", tasks_per_min=feeder.settings.tasks_per_min,
                      cloud=demo_cloud.url, plan=feeder.plan is not None)
        cloud = _cloud_tier(config, paths, queue, endpoints)
        sup = Supervisor(config, paths, queue, probe, SubprocessLauncher(), host=HostProbe(paths.root),
                         simulated=bool(args.sim), endpoints=endpoints, rig_driver=driver,
                         events_tail=_events_tail(paths.events), log=_json_log, cloud=cloud)
        from engine.metrics.server import start_metrics  # [metrics] listen (docs/metrics.md)

        metrics = start_metrics(config, paths, lambda: sup.writer.last_snapshot, _json_log)
        interval = args.tick or config.thresholds.snapshot_interval_s
        started = clock.now()
        sup.start(started)
        while True:
            now = clock.now()
            sup.tick(now)
            rotator.tick(now)  # logs/events.jsonl by size; writers and readers follow the name
            if feeder is not None and not sup.stop_requested:
                try:
                    feeder.tick(now)
                except Exception as exc:  # noqa: BLE001 - the demo's work must never stop the rig
                    _json_log("demo: submit failed", error=f"{type(exc).__name__}: {exc}")
            if stop["signal"] and not sup.stop_requested:
                sup.begin_shutdown(now, reason=f"received {stop['signal']}")
            if args.run_for is not None and now - started >= args.run_for and not sup.stop_requested:
                sup.begin_shutdown(now, reason="--run-for elapsed")
            if sup.stop_requested and sup.all_stopped():
                break
            clock.sleep(max(0.0, interval - (clock.now() - now)))
        sup.finish_shutdown(clock.now())
    finally:
        if metrics is not None:
            metrics.stop()
        if driver is not None:
            driver.stop()
        if demo_cloud is not None:
            demo_cloud.stop()
        queue.close()
        pidfile.release()
    return 0


# ---------------------------------------------------------------- worker verbs

def run_worker_verb(args: argparse.Namespace) -> int:
    from engine.commands import CommandKind, FileCommandSink, default_source, make_command
    from engine.paths import RigPaths
    from engine.schema import SchemaError
    from engine.snapshot import read_snapshot
    from engine.supervisor.pidfile import running_supervisor_pid

    from engine.cli.idcheck import BAD_ID_EXIT, bad_id
    from engine.ids import IdKind

    if bad_id(IdKind.WORKER, args.worker):
        return BAD_ID_EXIT
    paths = RigPaths(args.root)
    cmd = make_command(CommandKind(args.verb), args.worker, source=default_source("cli"))
    FileCommandSink(paths.commands).send(cmd)
    if running_supervisor_pid(paths.supervisor_pid) is None:
        print(f"{args.verb} {args.worker}: sent, but no supervisor is running on {paths.root}; "
              "it applies when one starts")
        return 3
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        try:
            snap = read_snapshot(paths.snapshot)
        except (SchemaError, ValueError):
            snap = None
        ack = next((a for a in snap.acks if a.command_id == cmd.command_id), None) if snap else None
        if ack is not None:
            print(f"{args.verb} {args.worker}: {ack.outcome}: {ack.message}")
            return 0 if ack.outcome == "ok" else 1
        time.sleep(0.1)
    print(f"{args.verb} {args.worker}: sent (command {cmd.command_id}); no ack within {args.wait:g}s")
    return 3
