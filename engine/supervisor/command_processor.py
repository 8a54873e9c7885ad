"""Operator commands: read ``state/commands/*.json`` oldest first, apply, ack, audit.

A command file is parsed completely (JSON, then ``Command.from_dict``) before anything is
applied, so a malformed one is refused whole and moved to ``commands/rejected/`` with the
reason; it is never half-applied. Handlers are registered per kind, so later code
(escalation approval, circuit breakers) plugs in without touching this file; a kind with
no handler is refused "not supported yet".
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from engine.commands import Command, CommandKind
from engine.model import iso
from engine.schema import SchemaError
from engine.snapshot import CommandAck

MAX_COMMAND_BYTES = 64_000
ACKS_KEPT = 50
RACY_MTIME_NS = 2_000_000_000
"""A directory mtime this recent may not change again for a file added now (1 s timestamps on
ext3 and some NFS servers, jiffy-coarse ones on ext4): it is not trusted to mean "nothing new"."""


@dataclass(frozen=True)
class Outcome:
    outcome: str  # ok | refused | error
    message: str

    @classmethod
    def ok(cls, message: str) -> "Outcome":
        return cls("ok", message)

    @classmethod
    def refused(cls, message: str) -> "Outcome":
        return cls("refused", message)


CommandHandler = Callable[[Command, float], Outcome]


class CommandProcessor:
    def __init__(self, commands_dir: Path, audit_path: Path, *, max_per_tick: int = 100) -> None:
        self.dir = Path(commands_dir)
        self.rejected_dir = self.dir / "rejected"
        self.audit_path = Path(audit_path)
        self.max_per_tick = max_per_tick
        self._handlers: dict[str, CommandHandler] = {}
        self.acks: deque[CommandAck] = deque(maxlen=ACKS_KEPT)
        self._dir_mtime_ns: int | None = None
        self.audit_errors = 0  # audit lines that could not be written (the ack still stands)

    def register(self, kind: CommandKind | str, handler: CommandHandler) -> None:
        """Route ``kind`` to ``handler(command, now) -> Outcome``; a later register replaces."""
        self._handlers[str(kind)] = handler

    def handles(self, kind: CommandKind | str) -> bool:
        return str(kind) in self._handlers

    def pending_files(self) -> list[Path]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        # Temp files of an atomic write start with "."; only finished files count.
        return [self.dir / n for n in sorted(names) if n.endswith(".json") and not n.startswith(".")]

    def process(self, now: float) -> list[CommandAck]:
        """Apply every waiting command (up to ``max_per_tick``); returns the new acks."""
        try:
            mtime = self.dir.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime == self._dir_mtime_ns:
            return []  # nothing arrived: one stat per tick, no listdir
        new: list[CommandAck] = []
        files = self.pending_files()
        for path in files[: self.max_per_tick]:
            new.append(self._one(path, now))
        if len(files) <= self.max_per_tick:
            self._dir_mtime_ns = mtime if time.time_ns() - mtime > RACY_MTIME_NS else None
        return new

    def _one(self, path: Path, now: float) -> CommandAck:
        cmd, problem = _parse(path)
        if cmd is None:
            ack = CommandAck(command_id=path.stem, kind="?", target=None, outcome="refused",
                             message=f"{path.name}: {problem}; moved to commands/rejected/", at=now, source=None)
            self._move_aside(path, problem or "malformed")
            self._record(ack, raw_name=path.name)
            return ack
        handler = self._handlers.get(cmd.kind.value)
        if handler is None:
            result = Outcome.refused(f"{cmd.kind.value}: not supported yet on this rig")
        else:
            try:
                result = handler(cmd, now)
            except Exception as exc:  # noqa: BLE001 - a bad handler must not stop the supervisor
                result = Outcome("error", f"{type(exc).__name__}: {exc}")
        ack = CommandAck(command_id=cmd.command_id, kind=cmd.kind.value, target=cmd.target,
                         outcome=result.outcome, message=result.message, at=now, source=cmd.source or None)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self._record(ack, raw_name=path.name, args=cmd.args, issued_at=cmd.issued_at)
        return ack

    def _move_aside(self, path: Path, reason: str) -> None:
        try:
            self.rejected_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, self.rejected_dir / path.name)
            (self.rejected_dir / (path.name + ".reason.txt")).write_text(reason + "\n", encoding="utf-8")
        except OSError:
            pass  # vanished, or the disk refuses: the refusal is still acked and audited

    def _record(self, ack: CommandAck, *, raw_name: str, args: dict | None = None,
                issued_at: float | None = None) -> None:
        self.acks.append(ack)
        line = {"at": iso(ack.at), "command_id": ack.command_id, "kind": ack.kind, "target": ack.target,
                "args": args or {}, "source": ack.source, "issued_at": iso(issued_at) if issued_at else None,
                "file": raw_name, "outcome": ack.outcome, "message": ack.message}
        try:
            self.audit_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.audit_path, "a", encoding="utf-8") as fh:  # append-only, one line per command
                fh.write(json.dumps(line, default=str) + "\n")
        except OSError:  # disk full: the command was applied; a lost audit line must not stop the supervisor
            self.audit_errors += 1

    def recent_acks(self) -> tuple[CommandAck, ...]:
        return tuple(self.acks)


def _parse(path: Path) -> tuple[Command | None, str | None]:
    try:
        size = path.stat().st_size
        if size > MAX_COMMAND_BYTES:
            return None, f"command file is {size} bytes (limit {MAX_COMMAND_BYTES})"
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, "vanished before it could be read"
    except OSError as exc:  # a directory, no permission: refuse it, never crash the tick
        return None, f"could not be read: {exc.strerror or exc}"
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"not valid JSON: {exc}"
    try:
        return Command.from_dict(data), None
    except SchemaError as exc:
        return None, f"not a valid command: {exc}"
    except (TypeError, ValueError) as exc:
        return None, f"not a valid command: {exc}"


def describe(acks: Iterable[CommandAck]) -> str:
    return "; ".join(f"{a.kind} {a.target or ''}: {a.outcome} ({a.message})" for a in acks)
