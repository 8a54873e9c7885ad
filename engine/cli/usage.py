"""What a command group (``galaxy plan``, ``galaxy cluster`` ...) does when run without a subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def help_and_fail(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A handler that prints the group's help and exits 2 (a usage error)."""

    def run(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run
