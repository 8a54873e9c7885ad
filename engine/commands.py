"""Operator commands as data: one JSON file per command in ``shared/state/commands/``.

Written atomically (temp + rename), so the supervisor never sees half a command. The
supervisor applies each one, acknowledges it in the next snapshot and appends it to the
audit log. The dashboard and the CLI send through the same ``CommandSink`` protocol.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from engine.atomic import atomic_write_bytes
from engine.ids import check_command_target
from engine.safeio import UnsafeFileError, read_json
from engine.schema import SchemaError, from_plain, to_plain_dict

MAX_COMMAND_BYTES = 64_000


class CommandKind(StrEnum):
    PAUSE = "pause"  # target: worker id
    RESUME = "resume"  # target: worker id
    DRAIN = "drain"  # target: worker id
    RESTART = "restart"  # target: worker id
    UNLOAD = "unload"  # target: worker id (force its model off the card)
    RETRY = "retry"  # target: task id
    RETRY_ALL_FAILED = "retry_all_failed"  # no target
    CANCEL = "cancel"  # target: task id
    APPROVE = "approve"  # target: escalation id; args: override_budget (bool)
    DENY = "deny"  # target: escalation id; args: reason (str)
    BREAKER_RESET = "breaker_reset"  # target: node name
    BREAKER_OPEN = "breaker_open"  # target: node name
    SHUTDOWN = "shutdown"  # no target: the supervisor stops cleanly (galaxy down)


NEEDS_TARGET = {k for k in CommandKind if k not in (CommandKind.RETRY_ALL_FAILED, CommandKind.SHUTDOWN)}


@dataclass(frozen=True)
class Command:
    command_id: str
    kind: CommandKind
    target: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # who/where: "tui user@host", "cli user@host"
    issued_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return to_plain_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Command:
        cmd = from_plain(cls, data)
        if cmd.kind in NEEDS_TARGET and not cmd.target:
            raise SchemaError(f"command {cmd.kind.value!r} needs a target")
        return cmd


def read_command_file(path: Path) -> Command:
    """One command file through the bounded reader (engine.safeio): a FIFO, symlink, oversize,
    non-UTF-8, deep or malformed file is a ``SchemaError`` whose message says why."""
    try:
        data = read_json(path, MAX_COMMAND_BYTES)
    except UnsafeFileError as exc:
        raise SchemaError(exc.reason) from None
    try:
        return Command.from_dict(data)
    except SchemaError as exc:
        raise SchemaError(f"not a valid command: {exc}") from None


def default_source(client: str) -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid())
    return f"{client} {user}@{socket.gethostname()}"


def make_command(kind: CommandKind, target: str | None = None, *, source: str, now: float | None = None,
                 **args: Any) -> Command:
    return Command(command_id=uuid.uuid4().hex[:12], kind=kind, target=target, args=args, source=source,
                   issued_at=time.time() if now is None else now)


class CommandSink(Protocol):
    def send(self, command: Command) -> None: ...


class FileCommandSink:
    """Drops a command file for the supervisor; works from any process, local or over SSH."""

    def __init__(self, commands_dir: Path) -> None:
        self.dir = Path(commands_dir)

    def send(self, command: Command) -> None:
        check_command_target(command.kind.value, command.target)  # InvalidId (a ValueError) before any write
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path_for(command), json.dumps(command.to_dict()).encode())

    def path_for(self, command: Command) -> Path:
        """Where ``send`` puts it: a sender that gets no ack may withdraw it by unlinking this."""
        return self.dir / f"{int(command.issued_at * 1e6):020d}-{command.command_id}.json"


class RecordingCommandSink:
    """Test double: remembers what was sent, sends nothing."""

    def __init__(self) -> None:
        self.sent: list[Command] = []

    def send(self, command: Command) -> None:
        self.sent.append(command)
