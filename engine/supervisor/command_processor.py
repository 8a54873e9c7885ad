"""Operator commands: take them from the rig's ``CommandChannel`` oldest first, apply, ack, audit.

A command is parsed completely (JSON, then ``Command.from_dict``) by the channel before
anything is applied, so a malformed one is refused whole (the file store moves it to
``commands/rejected/`` with the reason); it is never half-applied. Handlers are registered per kind, so later code
(escalation approval, circuit breakers) plugs in without touching this file; a kind with
no handler is refused "not supported yet".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.commands import Command, CommandKind
from engine.ids import command_target_problem
from engine.model import iso
from engine.snapshot import CommandAck
from engine.store.channels import AuditLog, CommandChannel, IncomingCommand

ACKS_KEPT = 50


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
    """Takes commands from a ``CommandChannel``, applies each through its kind's handler, acks it
    (the next snapshot carries the ack) and writes it to the ``AuditLog``."""

    def __init__(self, channel: CommandChannel, audit: AuditLog, *, max_per_tick: int = 100) -> None:
        self.channel = channel
        self.audit = audit
        self.max_per_tick = max_per_tick
        self._handlers: dict[str, CommandHandler] = {}
        self.acks: deque[CommandAck] = deque(maxlen=ACKS_KEPT)

    @property
    def audit_errors(self) -> int:
        """Audit lines that could not be written (the ack still stands)."""
        return self.audit.errors

    @property
    def audit_last_error(self) -> str:
        """Why the last one was lost, naming where."""
        return self.audit.last_error

    def register(self, kind: CommandKind | str, handler: CommandHandler) -> None:
        """Route ``kind`` to ``handler(command, now) -> Outcome``; a later register replaces."""
        self._handlers[str(kind)] = handler

    def handles(self, kind: CommandKind | str) -> bool:
        return str(kind) in self._handlers

    def process(self, now: float) -> list[CommandAck]:
        """Apply every waiting command (up to ``max_per_tick``); returns the new acks."""
        new: list[CommandAck] = []
        for item in self.channel.take(self.max_per_tick):
            try:
                new.append(self._one(item, now))
            except Exception as exc:  # noqa: BLE001 - one command must never stop the supervisor
                why = f"could not be processed: {type(exc).__name__}: {exc}"
                new.append(self._refuse(IncomingCommand(item.ref, None, why), now))
        return new

    def _one(self, item: IncomingCommand, now: float) -> CommandAck:
        cmd = item.command
        if cmd is None:
            return self._refuse(item, now)
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
        self.channel.done(item)
        self._record(ack, raw_name=item.ref, args=cmd.args, issued_at=cmd.issued_at)
        return ack

    def _refuse(self, item: IncomingCommand, now: float) -> CommandAck:
        """Set an unreadable command aside once (with its reason), ack and audit the refusal."""
        ack = CommandAck(command_id=Path(item.ref).stem[:64], kind="?", target=None, outcome="refused",
                         message=f"{item.ref}: {item.problem or 'malformed'}; moved to commands/rejected/",
                         at=now, source=None)
        self.channel.done(item)
        self._record(ack, raw_name=item.ref)
        return ack

    def _record(self, ack: CommandAck, *, raw_name: str, args: dict[str, Any] | None = None,
                issued_at: float | None = None) -> None:
        self.acks.append(ack)
        self.audit.append({"at": iso(ack.at), "command_id": ack.command_id, "kind": ack.kind, "target": ack.target,
                           "args": args or {}, "source": ack.source,
                           "issued_at": iso(issued_at) if issued_at else None, "file": raw_name,
                           "outcome": ack.outcome, "message": ack.message})

    def recent_acks(self) -> tuple[CommandAck, ...]:
        return tuple(self.acks)


def describe(acks: Iterable[CommandAck]) -> str:
    return "; ".join(f"{a.kind} {a.target or ''}: {a.outcome} ({a.message})" for a in acks)
