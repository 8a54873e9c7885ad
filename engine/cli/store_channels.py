"""The configured store's channels for a CLI command, and what it asks of the rig's supervisor
through them: is it there, and did it acknowledge a command (from the rig's latest snapshot).

The store is galaxy.toml's ``[store]`` (``--config``, located as every command does) or
``$GALAXY_STORE``; the rig is ``[rig] name``. With the file store this is the shared root, as
before; with Redis it is the rig's keys, wherever the CLI runs.
"""

from __future__ import annotations

import argparse
import sys
import time

from engine.paths import RigPaths
from engine.snapshot import CommandAck, Snapshot, parse_published
from engine.store.open import Channels
from engine.store.rigs_view import RIG_STALE_S


class StoreOpenError(Exception):
    """galaxy.toml or $GALAXY_STORE is wrong, or the store does not answer (``unreachable``): the
    message says which."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def open_cli_channels(args: argparse.Namespace) -> Channels:
    from engine.config import ConfigError, load_config, resolve_config_path
    from engine.store.open import open_channels

    try:
        config = load_config(resolve_config_path(getattr(args, "config", None)))
        return open_channels(config, RigPaths(args.root))
    except ConfigError as exc:
        raise StoreOpenError(str(exc)) from None
    except (ValueError, RuntimeError, OSError) as exc:  # a bad $GALAXY_STORE, an evicting Redis, a wrong password
        # imported only now: the queue protocol is not on `galaxy attach`'s path to its first frame
        from engine.queue.protocol import StoreUnavailable

        # no answer (yet): a supervisor waits for it (engine/store/startup.py)
        raise StoreOpenError(f"store: {exc}", unreachable=isinstance(exc, StoreUnavailable)) from None


def report_store_error(exc: StoreOpenError) -> int:
    print(f"galaxy: {exc}", file=sys.stderr)
    return 2


def latest_snapshot(channels: Channels, rig: str | None = None) -> Snapshot | None:
    """``rig``'s (default this rig's) latest snapshot; None while there is none or it cannot be read
    (being replaced)."""
    try:
        published = channels.snapshots.latest(rig or channels.rig)
        return parse_published(published) if published is not None else None
    except (ValueError, OSError):
        return None


def supervisor_running(channels: Channels, paths: RigPaths, now: float, rig: str | None = None) -> bool:
    """The file store: the pid file's supervisor lives. Redis: ``rig`` (default this rig) published a
    snapshot lately."""
    if channels.kind == "file":
        from engine.supervisor.pidfile import running_supervisor_pid

        return running_supervisor_pid(paths.supervisor_pid) is not None
    published = channels.snapshots.latest(rig or channels.rig)
    return published is not None and not published.is_stale(now, RIG_STALE_S)


def wait_ack(channels: Channels, command_id: str, seconds: float, poll_s: float = 0.1, *,
             rig: str | None = None) -> CommandAck | None:
    """The ack of ``command_id`` from ``rig``'s (default this rig's) snapshots, waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        snap = latest_snapshot(channels, rig)
        ack = next((a for a in snap.acks if a.command_id == command_id), None) if snap else None
        if ack is not None or time.monotonic() >= deadline:
            return ack
        time.sleep(poll_s)
