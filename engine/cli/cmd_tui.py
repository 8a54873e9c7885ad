"""``galaxy up`` / ``attach`` / ``down``: the dashboard's life cycle around the supervisor.

``up`` starts a detached supervisor when none runs (its own session, so closing the
terminal or quitting the dashboard leaves the rig running) and then shows the dashboard.
Textual is imported only inside the handlers, so the rest of the CLI stays light.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import safeio
from engine.paths import RigPaths
from engine.supervisor.pidfile import pid_alive

if TYPE_CHECKING:  # up and down read the service markers; attach (the dashboard's first frame) does not
    from engine.service import Systemctl

FIRST_SNAPSHOT_TIMEOUT_S = 30.0
NOT_INSTALLED = -1  # _start_service: the unit is gone, start the supervisor the usual way


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser("up", help="start the supervisor in the background if none runs, then show the dashboard")
    up.add_argument("--sim", action="store_true", help="the simulated rig (no GPU needed)")
    up.add_argument("--gpus", type=int, default=None, help="--sim: number of simulated GPUs")
    up.add_argument("--demo", action="store_true", help="--sim: keep the rig busy with a steady mixed stream of work "
                                                       "(stops with 'galaxy down')")
    up.add_argument("--read-only", action="store_true", help="show everything, send nothing")
    up.add_argument("--no-dashboard", action="store_true", help="only make sure the supervisor runs")
    up.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=None,
                    help="the started supervisor's log level (default: [log] level in galaxy.toml, else info)")
    up.set_defaults(func=run_up)
    at = sub.add_parser("attach", help="show the dashboard of the running supervisor (e.g. over ssh -t)")
    at.add_argument("--read-only", action="store_true", help="show everything, send nothing")
    at.set_defaults(func=run_attach)
    down = sub.add_parser("down", help="stop the supervisor cleanly (workers finish or hand back tasks)")
    down.add_argument("--wait", type=float, default=60.0, help="seconds to wait for it to exit")
    down.set_defaults(func=run_down)


def _pid(root: Path) -> int | None:
    from engine.paths import RigPaths
    from engine.supervisor.pidfile import running_supervisor_pid

    return running_supervisor_pid(RigPaths(root).supervisor_pid)


def start_supervisor(root: Path, config: Path | None, *, sim: bool, gpus: int | None,
                     demo: bool = False, log_level: str | None = None) -> subprocess.Popen[bytes]:
    """Detached: a new session, no tie to this terminal. It logs to logs/supervisor.log (JSON lines,
    rotated by the supervisor itself); what else it prints (a traceback) goes to logs/supervisor.out."""
    from engine.logsetup import LogConfig, rotate_if_over
    from engine.paths import RigPaths

    paths = RigPaths(root).ensure()
    cmd = [sys.executable, "-m", "engine.cli.main", "--root", str(root)]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd.append("supervise")
    if sim:
        cmd.append("--sim")
    if gpus is not None:
        cmd += ["--gpus", str(gpus)]
    if demo:
        cmd.append("--demo")
    cmd += ["--log-file", str(paths.logs / "supervisor.log")]
    if log_level:
        cmd += ["--log-level", log_level]
    out = paths.logs / "supervisor.out"
    rotate_if_over(out, LogConfig().max_bytes, 1)  # only `galaxy up` opens it, and only here
    try:  # never through a symlink or into a FIFO planted at the name (safeio.open_append)
        log = safeio.open_append(out)
        os.set_blocking(log, True)
    except safeio.RefusedLogError as exc:
        print(f"galaxy up: the supervisor's output is discarded: {exc}", file=sys.stderr)
        log = subprocess.DEVNULL
    try:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                cwd=os.getcwd())
    finally:
        if log != subprocess.DEVNULL:
            os.close(log)


def wait_first_snapshot(root: Path, proc: subprocess.Popen[bytes] | None, since: float,
                        timeout: float = FIRST_SNAPSHOT_TIMEOUT_S, *,
                        published_at: Callable[[], float | None] | None = None) -> str | None:
    """None once a snapshot newer than ``since`` exists; else why not. ``published_at``: when the rig's
    snapshot was published in the configured store (None: the root's snapshot file, by its mtime)."""
    from engine.paths import RigPaths

    path = RigPaths(root).snapshot

    def file_time() -> float | None:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return None

    when = published_at or file_time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            at = when()
        except OSError:  # the store does not answer (yet)
            at = None
        if at is not None and at >= since:
            return None
        if proc is not None and proc.poll() is not None:
            return f"the supervisor exited with status {proc.returncode}"
        time.sleep(0.1)
    return f"no snapshot at {path} after {timeout:g}s"


def _start_service(root: Path, installed: dict[str, Any], systemctl: Systemctl) -> int:
    """A rig installed as a service is started by systemd, never beside it (two supervisors)."""
    from engine.service import INSTALLED

    unit, user = str(installed["unit"]), bool(installed.get("user"))
    scope = "systemctl --user" if user else "systemctl"
    print(f"galaxy up: this root runs as systemd service {unit}; starting it ({scope} start {unit})", file=sys.stderr)
    since = time.time() - 1
    code, out = systemctl.run(user, "start", unit)
    if code != 0 and ("not found" in out or "not loaded" in out):  # uninstalled by hand: forget it
        print(f"galaxy up: {unit} is not installed any more ({out}); starting the supervisor directly",
              file=sys.stderr)
        (RigPaths(root).state / INSTALLED).unlink(missing_ok=True)
        return NOT_INSTALLED
    if code != 0:
        print(f"galaxy up: {scope} start {unit} failed ({code}): {out}", file=sys.stderr)
        return 1
    problem = wait_first_snapshot(root, None, since)
    if problem:
        print(f"galaxy up: {problem}; see journalctl {'--user ' if user else ''}-u {unit}", file=sys.stderr)
        return 1
    return 0


def run_up(args: argparse.Namespace, systemctl: Systemctl | None = None) -> int:
    from engine.service import INSTALLED, RealSystemctl, read_marker
    from engine.service import MARKER as SERVICE_MARKER

    root: Path = args.root
    if args.demo and not args.sim:
        print("galaxy up: --demo needs --sim (it submits made-up work)", file=sys.stderr)
        return 2
    pid = _pid(root)
    service = read_marker(RigPaths(root).state, SERVICE_MARKER) if pid is not None else None
    installed = read_marker(RigPaths(root).state, INSTALLED) if pid is None else None
    if service is not None and service.get("pid") == pid:
        print(f"galaxy up: the supervisor runs as systemd service {service.get('unit')} (pid {pid}); attaching",
              file=sys.stderr)
    elif installed is not None and installed.get("unit") and (
            rc := _start_service(root, installed, systemctl or RealSystemctl())) != NOT_INSTALLED:
        if rc:
            return rc
    elif pid is None:
        since = time.time() - 1
        proc = start_supervisor(root, args.config, sim=args.sim, gpus=args.gpus, demo=args.demo,
                                log_level=getattr(args, "log_level", None))
        print(f"galaxy up: started the supervisor (pid {proc.pid}, log {root / 'logs' / 'supervisor.log'})",
              file=sys.stderr)
        ended = _wait_started(args, root, proc, since)
        if ended is not None:  # it did not start (1), or it waits for its store (0): said why
            return ended
    else:
        print(f"galaxy up: a supervisor already runs on this root (pid {pid}); using it"
              + (" (--demo applies only to a supervisor it starts)" if args.demo else ""), file=sys.stderr)
    if args.no_dashboard:
        return 0
    return _dashboard(args, root)


def _wait_started(args: argparse.Namespace, root: Path, proc: subprocess.Popen[bytes],
                  since: float) -> int | None:
    """None once the supervisor started published its first snapshot; else ``up``'s exit status,
    after saying why. The configured store is opened once: when it does not answer, the supervisor
    waits for it (``_report_waiting``: 0 while it waits, 1 if it exited); a store that is wrong is
    the supervisor's to report (it exits: the snapshot wait says so, 1)."""
    from engine.cli.store_channels import StoreOpenError, open_cli_channels

    try:
        channels = open_cli_channels(args)
    except StoreOpenError as exc:
        if exc.unreachable:
            return _report_waiting(root, proc, str(exc))
        return _not_started(root, wait_first_snapshot(root, proc, since))
    try:
        if channels.kind == "file":
            return _not_started(root, wait_first_snapshot(root, proc, since))

        def published_at() -> float | None:
            got = channels.snapshots.latest(channels.rig)
            return got.published_at if got is not None else None

        return _not_started(root, wait_first_snapshot(root, proc, since, published_at=published_at))
    finally:
        channels.close()


def _not_started(root: Path, problem: str | None) -> int | None:
    """None when the snapshot wait found no problem; else 1, after printing it with the logs' tails."""
    if problem is None:
        return None
    log_tail = _log_tail(root / "logs" / "supervisor.log") + "\n" + _log_tail(root / "logs" / "supervisor.out")
    print(f"galaxy up: {problem}\n{log_tail}", file=sys.stderr)
    return 1


STORE_WAIT_CHECK_S = 3.0
"""How long ``galaxy up`` watches a supervisor that waits for its store: a wrong store exits it by then."""


def _report_waiting(root: Path, proc: subprocess.Popen[bytes], why: str) -> int:
    """The store does not answer: the supervisor started waits for it (logging each try) and starts
    its workers when it answers. Say so (0: it is up); if it exited instead, why (1)."""
    try:
        proc.wait(STORE_WAIT_CHECK_S)
    except subprocess.TimeoutExpired:
        print(f"galaxy up: the supervisor (pid {proc.pid}) is up and waits for its store ({why}); it starts its "
              f"workers when the store answers (log {root / 'logs' / 'supervisor.log'}). `galaxy attach` shows "
              "the rig then; `galaxy down` or SIGTERM stops it.", file=sys.stderr)
        return 0
    print(f"galaxy up: the supervisor exited with status {proc.returncode}\n"
          f"{_log_tail(root / 'logs' / 'supervisor.log')}\n{_log_tail(root / 'logs' / 'supervisor.out')}",
          file=sys.stderr)
    return 1


def _dashboard(args: argparse.Namespace, root: Path) -> int:
    """The dashboard on this rig's channels in the configured store ([store], $GALAXY_STORE).

    Its start-up runs without the cycle collector (``galaxy_tui.launch.tune_gc`` turns it back on
    before the app runs): the imports allocate ~100k objects that live as long as the dashboard,
    and collecting them as they came cost ~0.04 s of the first frame's CPU (~90 collections)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        from engine.cli.store_channels import StoreOpenError, open_cli_channels, report_store_error
        from galaxy_tui.launch import run_dashboard

        try:
            channels = open_cli_channels(args)
        except StoreOpenError as exc:
            return report_store_error(exc)
        try:
            return run_dashboard(root, read_only=args.read_only, channels=channels, config_path=args.config)
        finally:
            channels.close()
    finally:
        if collecting:
            gc.enable()


def run_attach(args: argparse.Namespace) -> int:
    if _pid(args.root) is None:
        print(f"galaxy attach: no supervisor is running on {args.root}; the dashboard will say so "
              "and pick up when one starts ('galaxy up')", file=sys.stderr)
    return _dashboard(args, args.root)


def run_down(args: argparse.Namespace) -> int:
    from engine.cli.store_channels import StoreOpenError, open_cli_channels
    from engine.commands import CommandKind, FileCommandSink, default_source, make_command
    from engine.paths import RigPaths
    from engine.service import MARKER as SERVICE_MARKER
    from engine.service import read_marker

    pid = _pid(args.root)
    if pid is None:
        print(f"galaxy down: no supervisor is running on {args.root}")
        return 0
    service = read_marker(RigPaths(args.root).state, SERVICE_MARKER)
    if service is not None and service.get("pid") == pid:
        print(f"galaxy down: supervisor {pid} runs as systemd service {service.get('unit')}; it stays stopped "
              "until `systemctl start` or `galaxy up`")
    shutdown = make_command(CommandKind.SHUTDOWN, source=default_source("cli"))
    try:
        channels = open_cli_channels(args)
    except StoreOpenError as exc:  # the store is wrong or away: SIGTERM below still stops it
        print(f"galaxy down: {exc}; stopping it with SIGTERM", file=sys.stderr)
        FileCommandSink(RigPaths(args.root).commands).send(shutdown)
    else:
        try:
            channels.commands.send(shutdown)
        finally:
            channels.close()
    deadline = time.monotonic() + args.wait
    termed = False
    while time.monotonic() < deadline:
        if pid_alive(pid) is False or _pid(args.root) is None:
            print(f"galaxy down: supervisor {pid} stopped")
            return 0
        if not termed and time.monotonic() > deadline - args.wait / 2:
            try:
                os.kill(pid, signal.SIGTERM)  # the command was not picked up: ask the OS way
            except ProcessLookupError:
                pass  # it exited just now
            termed = True
        time.sleep(0.1)
    print(f"galaxy down: supervisor {pid} still running after {args.wait:g}s", file=sys.stderr)
    return 1


def _log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, read bounded from a regular file only (never a FIFO, device or link)."""
    try:
        raw = safeio.read_tail(path, 64 * 1024)
    except (OSError, safeio.UnsafeFileError):
        return ""
    return "\n".join(raw.decode(errors="replace").splitlines()[-lines:])
