"""The channels a process uses, from the configured store: the file store under the shared root
(no ``[store] url``), or Redis (``engine.store.redis.channels``, imported only then)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.commands import FileCommandChannel
from engine.config import GalaxyConfig
from engine.escalation.store import EscalationStore
from engine.paths import RigPaths
from engine.snapshot import FileSnapshotStore, rig_name_problem
from engine.store.channels import AuditLog, CommandChannel, EscalationRecords, EventStream, SnapshotStore
from engine.store.settings import (
    DEFAULT_CLUSTER,
    ENV_STORE,
    StoreConfig,
    StoreKind,
    effective_store,
    name_problem,
    redact_url,
)

if TYPE_CHECKING:
    from engine.audit import FileAuditLog
    from engine.events import FileEventStream


@dataclass(frozen=True)
class Channels:
    """Every cross-process channel but the task queue, for one rig of one store."""

    rig: str
    events: EventStream
    snapshots: SnapshotStore
    audit: AuditLog
    escalations: EscalationRecords
    commands_for: Callable[[str], CommandChannel]
    """The command channel of a rig, the same object on every call (this rig's supervisor takes from
    its own; senders pick the rig)."""
    kind: StoreKind = StoreKind.FILE
    close: Callable[[], None] = field(default=lambda: None)

    @property
    def commands(self) -> CommandChannel:
        """This rig's command channel."""
        return self.commands_for(self.rig)


class FileEventsOnUse:
    """The file store's event stream, opened on first use: a process that never writes or reads
    events (``galaxy attach``) does not import engine.events (the event model, the queue's write
    step), which its first frame would wait for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: FileEventStream | None = None

    @property
    def stream(self) -> FileEventStream:
        if self._stream is None:
            from engine.events import FileEventStream

            self._stream = FileEventStream(self.path)
        return self._stream

    def append(self, line: str) -> None:
        self.stream.append(line)

    def tail(self, n: int = 50) -> list[dict[str, Any]]:
        return self.stream.tail(n)

    def read_after(self, cursor: str | None, limit: int) -> tuple[list[str], str | None]:
        return self.stream.read_after(cursor, limit)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    @property
    def write_errors(self) -> int:
        return self._stream.write_errors if self._stream is not None else 0

    @property
    def last_error(self) -> str:
        return self._stream.last_error if self._stream is not None else ""


class FileAuditOnUse:
    """The file store's audit log, opened on first use (as ``FileEventsOnUse``: engine.audit reads
    with engine.events)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log: FileAuditLog | None = None

    @property
    def log(self) -> FileAuditLog:
        if self._log is None:
            from engine.audit import FileAuditLog

            self._log = FileAuditLog(self.path)
        return self._log

    def append(self, record: dict[str, Any]) -> None:
        self.log.append(record)

    def __call__(self, record: dict[str, Any]) -> None:
        self.log.append(record)

    def read(self, n: int = 100) -> list[dict[str, Any]]:
        return self.log.read(n)

    @property
    def errors(self) -> int:
        return self._log.errors if self._log is not None else 0

    @property
    def last_error(self) -> str:
        return self._log.last_error if self._log is not None else ""


def file_channels(paths: RigPaths, rig: str) -> Channels:
    """The file store: everything under the rig's shared root, as galaxy has always kept it.
    Another rig's commands land in ``state/commands/rigs/<rig>/`` (nobody takes them: one rig per root)."""

    opened: dict[str, CommandChannel] = {}

    def commands_for(name: str) -> CommandChannel:
        if name not in opened:  # one channel per rig: it remembers the ids it applied
            why = None if name == rig else rig_name_problem(name)
            if why is not None:
                raise ValueError(why)
            opened[name] = FileCommandChannel(paths.commands if name == rig else paths.commands / "rigs" / name)
        return opened[name]

    return Channels(rig=rig, events=FileEventsOnUse(paths.events),
                    snapshots=FileSnapshotStore(paths.snapshot, rig), audit=FileAuditOnUse(paths.audit),
                    escalations=EscalationStore(paths.escalations), commands_for=commands_for)


def open_channels(config: GalaxyConfig, paths: RigPaths, environ: Mapping[str, str] = os.environ) -> Channels:
    """The channels of the store ``config`` (and ``$GALAXY_STORE``) name, for this rig (``[rig] name``).

    Redis: connects and refuses a server that may evict keys or refuses the password
    (``StoreConfigError``), raises ``StoreUnavailable`` when it does not answer (engine/store/startup.py
    waits for it) and ``StoreEnvError`` for a bad ``$GALAXY_STORE``. The caller closes them (``Channels.close``)."""
    return open_store_channels(effective_store(config.store, environ), config.rig, paths)


ENV_CLUSTER = "GALAXY_STORE_CLUSTER"
ENV_RIG = "GALAXY_RIG"


def store_env(config: GalaxyConfig, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What a worker process is told about the store (its supervisor's, exactly): workers read no galaxy.toml."""
    store = effective_store(config.store, environ)
    return {ENV_STORE: store.url or "file", ENV_CLUSTER: store.cluster, ENV_RIG: config.rig}


def rig_from_env(environ: Mapping[str, str]) -> str:
    """A worker's rig: its supervisor's ``[rig] name`` (``store_env``), else this host's name."""
    return environ.get(ENV_RIG) or os.uname().nodename


def open_channels_from_env(paths: RigPaths, environ: Mapping[str, str] = os.environ) -> Channels:
    """A worker's channels, from what its supervisor put in its environment (``store_env``); with none of
    it (a worker started by hand), the file store under ``paths``."""
    cluster = environ.get(ENV_CLUSTER) or DEFAULT_CLUSTER
    return open_store_channels(effective_store(StoreConfig(None, cluster), environ), rig_from_env(environ), paths)


def open_store_channels(store: StoreConfig, rig: str, paths: RigPaths) -> Channels:
    """The channels of ``store`` for ``rig``."""
    if store.url is None:
        return file_channels(paths, rig)
    why = name_problem("rig", rig)
    if why is not None:  # the default is the host name, which may not fit a key
        raise ValueError(f"{why}; set [rig] name in galaxy.toml")
    from engine.store.redis.channels import redis_channels
    from engine.store.redis.client import check_server, connect

    client = connect(store.url)
    try:  # not answering: StoreUnavailable (an OSError, worth waiting for); wrong: StoreConfigError
        check_server(client, where=redact_url(store.url))
    except Exception:
        client.close()
        raise
    return redis_channels(client, store.cluster, rig)
