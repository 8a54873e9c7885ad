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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.commands import Command, CommandKind, read_command_file
from engine.ids import command_target_problem
from engine.model import iso
from engine.schema import SchemaError
from engine.snapshot import CommandAck

ACKS_KEPT = 50
RACY_MTIME_NS = 2_000_000_000
"""A directory mtime this recent may not change again for a file added now (1 s timestamps on
ext3 and some NFS servers, jiffy-coarse ones on ext4): it is not trusted to mean "nothing new"."""


@dataclass(frozen=True)
class Outcome:
    outcome: str  # ok | refused | error
    message: str

    @classmethod
    def ok(cls, message: str) -> Outcome:
        return cls("ok", message)

    @classmethod
    def refused(cls, message: str) -> Outcome:
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
        self._stuck: set[str] = set()  # refused files that could not be moved aside: not read again
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
        return [self.dir / n for n in sorted(names)
                if n.endswith(".json") and not n.startswith(".") and n not in self._stuck]

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
            try:
                new.append(self._one(path, now))
            except Exception as exc:  # noqa: BLE001 - one command file must never stop the supervisor
                new.append(self._refuse(path, f"could not be processed: {type(exc).__name__}: {exc}", now))
        if len(files) <= self.max_per_tick:
            self._dir_mtime_ns = mtime if time.time_ns() - mtime > RACY_MTIME_NS else None
        return new

    def _one(self, path: Path, now: float) -> CommandAck:
        cmd, problem = _parse(path)
        if cmd is None:
            return self._refuse(path, problem or "malformed", now)
        handler = self._handlers.get(cmd.kind.value)
        bad_target = command_target_problem(cmd.kind.value, cmd.target)  # before any handler builds a path
        if bad_target is not None:
            result = Outcome.refused(bad_target)
        elif handler is None:
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

    def _refuse(self, path: Path, problem: str, now: float) -> CommandAck:
        """Move a bad command file aside once (with its reason), ack and audit the refusal."""
        ack = CommandAck(command_id=path.stem[:64], kind="?", target=None, outcome="refused",
                         message=f"{path.name}: {problem}; moved to commands/rejected/", at=now, source=None)
        self._move_aside(path, problem)
        self._record(ack, raw_name=path.name)
        return ack

    def _move_aside(self, path: Path, reason: str) -> None:
        try:
            self.rejected_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, self.rejected_dir / path.name)  # a symlink moves as the link itself
        except FileNotFoundError:
            return
        except OSError:  # the disk refuses: never read this name again in this process
            self._stuck.add(path.name)
            return
        try:
            (self.rejected_dir / (path.name + ".reason.txt")).write_text(reason + "\n", encoding="utf-8")
        except OSError:
            pass  # the refusal is still acked and audited

    def _record(self, ack: CommandAck, *, raw_name: str, args: dict[str, Any] | None = None,
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
        return read_command_file(path), None
    except FileNotFoundError:
        return None, "vanished before it could be read"
    except SchemaError as exc:  # the bounded reader's verdicts (FIFO, link, size, UTF-8, depth) and the schema's
        return None, str(exc)
    except OSError as exc:  # no permission, I/O error: refuse it, never crash the tick
        return None, f"could not be read: {exc.strerror or exc}"


def describe(acks: Iterable[CommandAck]) -> str:
    return "; ".join(f"{a.kind} {a.target or ''}: {a.outcome} ({a.message})" for a in acks)
