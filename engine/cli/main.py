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
import sys
from collections.abc import Mapping
from pathlib import Path

import engine.cli as cli_pkg
from engine import __version__
from engine.config_locate import locate_config, resolve_root

FAST_COMMANDS = {"attach": "cmd_tui", "up": "cmd_tui", "down": "cmd_tui"}
"""Commands parsed with their own module only: ``galaxy attach`` is the dashboard, whose first frame
waits for every import, and the other command modules (~0.1 s of imports) would only build help text."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; ``only``: just the commands of that module (``cmd_tui``)."""
    parser = argparse.ArgumentParser(prog="galaxy", description="Supervisor and dashboard for GPU rigs.")
    parser.add_argument("--version", action="version", version=f"galaxy {__version__}")
    parser.add_argument("--root", type=Path, default=None,
                        help="the rig's shared root (default: $GALAXY_ROOT, else galaxy.toml's [rig] root, "
                             "else ./shared)")
    parser.add_argument("--config", type=Path, default=None,
                        help="galaxy.toml (default: $GALAXY_CONFIG, ./galaxy.toml, "
                             "$XDG_CONFIG_HOME/galaxy/galaxy.toml, /etc/galaxy/galaxy.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only is not None else command_modules():
        try:
            importlib.import_module(f"engine.cli.{name}").register(sub)
        except Exception as exc:  # noqa: BLE001 - one broken module must not take the whole CLI down
            print(f"galaxy: commands from {name} are unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
    return parser


def command_modules() -> list[str]:
    """Every ``cmd_*`` module of the CLI, by name (pkgutil is imported only for this: not by ``galaxy attach``)."""
    import pkgutil

    return sorted(m.name for m in pkgutil.iter_modules(cli_pkg.__path__) if m.name.startswith("cmd_"))


def command_module(argv: list[str]) -> str | None:
    """The module of the command ``argv`` names, when it is one of ``FAST_COMMANDS``; None (every
    module) for anything else, or an option before it other than ``--root X`` / ``--config X``."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in ("--root", "--config"):
            i += 2
        elif word.startswith(("--root=", "--config=")):
            i += 1
        else:
            return None if word.startswith("-") else FAST_COMMANDS.get(word)
    return None


def locate_paths(args: argparse.Namespace, env: Mapping[str, str], cwd: Path) -> None:
    """Absolute ``args.config`` (None when no galaxy.toml was found) and ``args.root``, with how
    each was found (``args.config_how``, ``args.root_how``) for ``galaxy config show``."""
    cfg = locate_config(args.config, env, cwd)
    root = resolve_root(args.root, env, cwd, cfg.path)
    args.config, args.config_how = cfg.path, cfg.how
    args.root, args.root_how = Path(root.path or cwd / "shared").resolve(), root.how


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion: argcomplete answers and exits when the shell asks (``galaxy completion``)."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    from engine.cli.completion import attach_completers

    attach_completers(parser)
    argcomplete.autocomplete(parser)


def main(argv: list[str] | None = None) -> int:
    completing = "_ARGCOMPLETE" in os.environ
    parser = build_parser(None if completing else command_module(sys.argv[1:] if argv is None else argv))
    _complete(parser)
    args = parser.parse_args(argv)
    locate_paths(args, os.environ, Path.cwd())
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
