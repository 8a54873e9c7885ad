"""``galaxy attach`` (and up/down) parse with their own command module only (engine/cli/main.py
FAST_COMMANDS): the same commands, arguments and handlers as the whole parser, less to import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import FAST_COMMANDS, build_parser, command_module

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", sorted(FAST_COMMANDS))
def test_fast_command_parses_as_the_whole_parser_does(command: str) -> None:
    argv = ["--root", "/tmp/r", command]
    whole = build_parser().parse_args(argv)
    fast = build_parser(only=command_module(argv)).parse_args(argv)
    assert vars(fast) == vars(whole)
    assert fast.func is whole.func


@pytest.mark.parametrize(("argv", "module"), [
    (["attach"], "cmd_tui"),
    (["--root", "attach", "status"], None),  # a root named attach
    (["--root=/r", "--config", "/c.toml", "up", "--sim"], "cmd_tui"),
    (["--ro", "/r", "attach"], None),  # an abbreviated option: argparse knows what it is, not us
    (["--help"], None),
    (["status"], None),
    ([], None),
    (["--root"], None),
])
def test_which_module(argv: list[str], module: str | None) -> None:
    assert command_module(argv) == module


def test_attach_does_not_import_the_other_commands() -> None:
    code = ("import sys; from engine.cli.main import build_parser, command_module; "
            "build_parser(command_module(['attach'])).parse_args(['attach']); "
            "print(sorted(m for m in sys.modules if m.startswith('engine.cli.cmd_')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['engine.cli.cmd_tui']"
