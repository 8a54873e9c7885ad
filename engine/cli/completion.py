"""Shell completion (argcomplete): commands and options from the parser, ids from the rig.

Ids come from what is cheap to list: worker ids from the snapshot (else galaxy.toml's groups),
task ids from the NAMES in ``failed/`` and ``processing/`` (a directory listing, never a
file read, so a queue of 20,000 tasks completes at once), escalation ids from the names in
``state/escalations/``. Completers are attached by argument name (``attach_completers``), so
command modules need no completion code.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MAX_NAMES = 2000  # a completion menu longer than this helps no one

Completer = Callable[..., list[str]]


def _root_of(parsed: argparse.Namespace | None) -> Path:
    from engine.cli.main import locate_paths

    ns = argparse.Namespace(root=getattr(parsed, "root", None), config=getattr(parsed, "config", None))
    locate_paths(ns, os.environ, Path.cwd())
    return Path(ns.root)


def _names(directory: Path, suffix: str = ".json", prefix: str = "") -> Iterator[str]:
    """Entry names (less ``suffix``) that start with ``prefix``; at most MAX_NAMES of them."""
    found = 0
    try:
        with os.scandir(directory) as it:
            for entry in it:
                name = entry.name
                if name.startswith(prefix) and name.endswith(suffix) and not name.startswith("."):
                    yield name[: -len(suffix)] if suffix else name
                    found += 1
                    if found >= MAX_NAMES:
                        return
    except OSError:
        return


def task_ids(root: Path, prefix: str = "") -> list[str]:
    """Failed and processing task ids, from file names only."""
    from engine.paths import RigPaths
    from engine.queue.names import parse_processing_name

    paths = RigPaths(root)
    out = set(_names(paths.failed, ".json", prefix))
    for name in _names(paths.processing, "", prefix):
        parsed = parse_processing_name(name)
        if parsed is not None:
            out.add(parsed.task_id)
    return sorted(out)


def worker_ids(root: Path, prefix: str = "") -> list[str]:
    """Worker ids of the last snapshot."""
    from engine.paths import RigPaths
    from engine.snapshot import read_snapshot

    try:
        snap = read_snapshot(RigPaths(root).snapshot)
    except (OSError, ValueError):
        return []
    return sorted(w.worker_id for w in snap.workers) if snap is not None else []


def escalation_ids(root: Path, prefix: str = "") -> list[str]:
    from engine.paths import RigPaths

    return sorted(_names(RigPaths(root).escalations, ".json", prefix))


def _completer(source: Callable[[Path, str], list[str]]) -> Completer:
    def complete(prefix: str = "", parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
        try:
            return [x for x in source(_root_of(parsed_args), prefix) if x.startswith(prefix)]
        except Exception:  # noqa: BLE001 - a completion never prints a traceback into the shell
            return []
    return complete


BY_DEST: dict[str, Completer] = {
    "worker": _completer(worker_ids),
    "task_id": _completer(task_ids),
    "escalation_id": _completer(escalation_ids),
}


def attach_completers(parser: argparse.ArgumentParser) -> int:
    """Set ``completer`` on every positional named worker / task_id / escalation_id; returns how many."""
    n = 0
    for action in parser._actions:  # argparse keeps no public list of actions
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                n += attach_completers(sub)
        elif not action.option_strings and action.dest in BY_DEST:
            action.completer = BY_DEST[action.dest]  # type: ignore[attr-defined]
            n += 1
    return n


def shell_snippet(shell: str, prog: str = "galaxy") -> str:
    """What to put in ~/.bashrc or ~/.zshrc (``eval "$(galaxy completion bash)"``)."""
    from argcomplete.shell_integration import shellcode

    return str(shellcode([prog], shell=shell))
