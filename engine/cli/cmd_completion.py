"""``galaxy completion bash|zsh``: the shell code that registers tab completion."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("completion", help="print the shell code for tab completion (eval it in ~/.bashrc / ~/.zshrc)",
                       description='bash: eval "$(galaxy completion bash)"   zsh: eval "$(galaxy completion zsh)"')
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(func=run_completion)


def run_completion(args: argparse.Namespace) -> int:
    try:
        from engine.cli.completion import shell_snippet

        sys.stdout.write(shell_snippet(args.shell))
    except ImportError:
        print("galaxy completion: argcomplete is not installed (pip install argcomplete)", file=sys.stderr)
        return 1
    return 0
