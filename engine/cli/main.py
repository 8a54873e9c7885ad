"""Entry point for the ``galaxy`` console script.

Sub-commands live in ``engine/cli/cmd_*.py``; each module exposes
``register(subparsers) -> None`` and sets ``func`` on its parsers. Modules import heavy
dependencies (torch, textual) inside their handlers, never at module level, so
``galaxy status`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from pathlib import Path

import engine.cli as cli_pkg
from engine import __version__
from engine.paths import default_root


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="galaxy", description="Supervisor and dashboard for GPU rigs.")
    parser.add_argument("--version", action="version", version=f"galaxy {__version__}")
    parser.add_argument("--root", type=Path, default=None,
                        help="the rig's shared root (default: $GALAXY_ROOT or ./shared)")
    parser.add_argument("--config", type=Path, default=None,
                        help="galaxy.toml (default: $GALAXY_CONFIG or ./galaxy.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("cmd_"):
            try:
                importlib.import_module(f"engine.cli.{mod.name}").register(sub)
            except Exception as exc:  # noqa: BLE001 - one broken module must not take the whole CLI down
                print(f"galaxy: commands from {mod.name} are unavailable: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.root is None:
        args.root = default_root()
    else:
        args.root = args.root.resolve()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `galaxy status | head`: the reader left; say nothing more, like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
