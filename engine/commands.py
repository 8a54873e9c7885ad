"""Operator commands as data, through a ``CommandChannel`` (engine.store.channels): one JSON
file per command in ``shared/state/commands/`` (``FileCommandChannel``), or a rig's Redis stream.

The supervisor applies each one, acknowledges it in the next snapshot and appends it to the
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
from engine.safeio import UnsafeFileError, ensure_real_dir, read_json
from engine.schema import SchemaError, from_plain, to_plain_dict
from engine.store.channels import IncomingCommand

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


DONE_IDS_KEPT = 10_000
"""Command ids this process applied, remembered so a resent command file is not applied twice."""
RACY_MTIME_NS = 2_000_000_000
"""A directory mtime this recent may not change again for a file added now (1 s timestamps on
ext3 and some NFS servers, jiffy-coarse ones on ext4): it is not trusted to mean "nothing new"."""


class FileCommandChannel:
    """The file store's ``CommandChannel``: one command file per command in ``state/commands/``.

    Any process sends (a temp file renamed in, so the supervisor never sees half a command);
    the supervisor takes them oldest first and marks each ``done``: the file is removed, or
    moved to ``rejected/`` with its reason when it could not be read. A resent command id
    that this channel already applied is dropped, not applied again."""

    def __init__(self, commands_dir: Path) -> None:
        self.dir = Path(commands_dir)
        self.rejected_dir = self.dir / "rejected"
        self._dir_mtime_ns: int | None = None
        self._stuck: set[str] = set()  # refused files that could not be moved aside: not read again
        self._done_ids: dict[str, None] = {}  # insertion-ordered: the oldest are forgotten first

    def send(self, command: Command) -> None:
        check_command_target(command.kind.value, command.target)  # InvalidId (a ValueError) before any write
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path_for(command), json.dumps(command.to_dict()).encode())

    def path_for(self, command: Command) -> Path:
        """Where ``send`` puts it: a sender that gets no ack may withdraw it by unlinking this."""
        return self.dir / f"{int(command.issued_at * 1e6):020d}-{command.command_id}.json"

    def withdraw(self, command: Command) -> bool:
        try:
            os.unlink(self.path_for(command))
        except FileNotFoundError:
            return False
        return True

    def pending_files(self) -> list[Path]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        # Temp files of an atomic write start with "."; only finished files count.
        return [self.dir / n for n in sorted(names)
                if n.endswith(".json") and not n.startswith(".") and n not in self._stuck]

    def take(self, limit: int) -> list[IncomingCommand]:
        try:
            mtime = self.dir.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime == self._dir_mtime_ns:
            return []  # nothing arrived: one stat per call, no listdir
        files = self.pending_files()
        out: list[IncomingCommand] = []
        for path in files:
            if len(out) >= limit:
                break
            item = _read_incoming(path)
            if item.command is not None and item.command.command_id in self._done_ids:
                path.unlink(missing_ok=True)  # a resend of a command applied already
                continue
            out.append(item)
        if not out and len(files) <= limit:  # nothing left to hand out: the next call may skip the listing
            self._dir_mtime_ns = mtime if time.time_ns() - mtime > RACY_MTIME_NS else None
        return out

    def done(self, item: IncomingCommand) -> None:
        path = self.dir / item.ref
        if item.command is not None and item.problem is None:
            self._done_ids[item.command.command_id] = None
            if len(self._done_ids) > DONE_IDS_KEPT:
                del self._done_ids[next(iter(self._done_ids))]
            path.unlink(missing_ok=True)
            return
        self._move_aside(path, item.problem or "refused")

    def _move_aside(self, path: Path, reason: str) -> None:
        """Move a bad command file to ``rejected/`` once, with its reason."""
        try:
            ensure_real_dir(self.rejected_dir)  # never a link out of the root
            os.replace(path, self.rejected_dir / path.name)  # a symlink moves as the link itself
        except FileNotFoundError:
            return
        except OSError:  # the disk refuses: never read this name again in this process
            self._stuck.add(path.name)
            return
        try:
            # a new file renamed over the name: a link planted there is replaced, never written through
            atomic_write_bytes(self.rejected_dir / (path.name + ".reason.txt"), (reason + "\n").encode())
        except OSError:
            pass  # the refusal is still acked and audited


FileCommandSink = FileCommandChannel
"""The sending side's older name."""


def _read_incoming(path: Path) -> IncomingCommand:
    try:
        return IncomingCommand(path.name, read_command_file(path))
    except FileNotFoundError:
        return IncomingCommand(path.name, None, "vanished before it could be read")
    except SchemaError as exc:  # the bounded reader's verdicts (FIFO, link, size, UTF-8, depth) and the schema's
        return IncomingCommand(path.name, None, str(exc))
    except OSError as exc:  # no permission, I/O error: refuse it, never crash the tick
        return IncomingCommand(path.name, None, f"could not be read: {exc.strerror or exc}")


class RecordingCommandSink:
    """Test double: remembers what was sent, sends nothing."""

    def __init__(self) -> None:
        self.sent: list[Command] = []

    def send(self, command: Command) -> None:
        self.sent.append(command)
