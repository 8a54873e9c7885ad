"""``galaxy service install [--user] [--print] | uninstall``: the supervisor as a systemd service."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("service", help="run the supervisor as a systemd service (comes back after a crash or reboot)")
    verbs = p.add_subparsers(dest="service_verb", metavar="VERB")
    inst = verbs.add_parser("install", help="write the systemd unit (docs/operator-guide.md: Running galaxy at boot)")
    _common(inst)
    inst.add_argument("--print", action="store_true", dest="print_only", help="show the unit; write nothing")
    inst.add_argument("--enable", action="store_true", help="also run systemctl daemon-reload and enable --now")
    inst.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=None,
                      help="the supervisor's --log-level (default: [log] level in galaxy.toml)")
    inst.add_argument("--force", action="store_true", help="overwrite a unit galaxy did not write")
    inst.set_defaults(func=run_install)
    un = verbs.add_parser("uninstall", help="stop, disable and remove the unit")
    _common(un)
    un.set_defaults(func=run_uninstall)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", action="store_true", help="a user unit (~/.config/systemd/user; no root needed; "
                                                       "run `loginctl enable-linger` to start at boot)")
    p.add_argument("--name", default="galaxy", help="unit name (default galaxy -> galaxy.service)")
    p.add_argument("--unit-dir", type=Path, default=None, help=argparse.SUPPRESS)  # tests


def _unit_path(args: argparse.Namespace) -> Path:
    from engine.service import unit_dir

    return (args.unit_dir or unit_dir(args.user)) / f"{args.name}.service"


def build_spec(args: argparse.Namespace) -> Any:
    from engine.config import ConfigError, load_config
    from engine.service import UnitSpec, galaxy_command

    grace = 30.0
    if args.config is not None:
        if not Path(args.config).is_file():
            raise ConfigError("no such file: the unit would start with defaults; write it first (galaxy init) "
                              "or leave --config/$GALAXY_CONFIG out", path=Path(args.config))
        grace = load_config(args.config).thresholds.shutdown_grace_s  # a bad file is reported here
    exec_argv, python_path = galaxy_command()
    return UnitSpec(root=Path(args.root).absolute(), config=Path(args.config).absolute() if args.config else None,
                    exec_argv=exec_argv, shutdown_grace_s=grace, user_unit=args.user,
                    run_as=None if args.user else _operator(), python_path=python_path,
                    log_level=args.log_level, unit_name=f"{args.name}.service")


def _operator() -> str:
    """The user a system unit runs as: who ran ``sudo galaxy service install``, not root."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def run_install(args: argparse.Namespace, systemctl: Any = None) -> int:
    from engine.config import ConfigError
    from engine.paths import RigPaths
    from engine.service import INSTALLED, RealSystemctl, render_unit, write_marker

    try:
        spec = build_spec(args)
    except ConfigError as exc:
        for one in exc.errors:
            print(f"galaxy service: {one}", file=sys.stderr)
        return 2
    text = render_unit(spec)
    if args.print_only:
        sys.stdout.write(text)
        return 0
    path = _unit_path(args)
    if path.exists() and not args.force and "galaxy service install" not in path.read_text(errors="replace"):
        print(f"galaxy service: {path} exists and was not written by galaxy; --force replaces it", file=sys.stderr)
        return 1
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    except PermissionError:
        print(f"galaxy service: cannot write {path}: run with sudo, or use --user", file=sys.stderr)
        return 1
    paths = RigPaths(spec.root).ensure()
    write_marker(paths.state, INSTALLED, {"unit": spec.unit_name, "user": spec.user_unit, "path": str(path)})
    ctl = "systemctl --user" if args.user else "sudo systemctl"
    print(f"wrote {path}")
    if args.enable:
        runner = systemctl or RealSystemctl()
        for step in (("daemon-reload",), ("enable", "--now", spec.unit_name)):
            code, out = runner.run(args.user, *step)
            if code != 0:
                print(f"galaxy service: systemctl {' '.join(step)} failed ({code}): {out}", file=sys.stderr)
                return 1
        print(f"enabled and started {spec.unit_name}; logs: journalctl {'--user ' if args.user else ''}-u {args.name}")
    else:
        print(f"next: {ctl} daemon-reload && {ctl} enable --now {spec.unit_name}")
    if args.user:
        print(f"to start at boot without a login: sudo loginctl enable-linger {getpass.getuser()}")
    return 0


def run_uninstall(args: argparse.Namespace, systemctl: Any = None) -> int:
    from engine.paths import RigPaths
    from engine.service import INSTALLED, RealSystemctl

    path = _unit_path(args)
    runner = systemctl or RealSystemctl()
    if path.exists():
        runner.run(args.user, "disable", "--now", path.name)  # best effort: it may never have been enabled
        try:
            path.unlink()
        except PermissionError:
            print(f"galaxy service: cannot remove {path}: run with sudo", file=sys.stderr)
            return 1
        runner.run(args.user, "daemon-reload")
        print(f"removed {path}")
    else:
        print(f"galaxy service: no unit at {path}")
    try:
        (RigPaths(args.root).state / INSTALLED).unlink()
    except OSError:
        pass
    return 0
