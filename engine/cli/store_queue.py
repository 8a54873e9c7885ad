"""The configured store's task queue for a CLI command (submit, status, retry, cancel, task show,
escalation answers): galaxy.toml's ``[store]`` (located as every command does) or ``$GALAXY_STORE``,
the same queue the rig's supervisor and workers use. The file store needs no galaxy.toml at all.
"""

from __future__ import annotations

import argparse
import os

from engine.cli.store_channels import StoreOpenError
from engine.config import GalaxyConfig
from engine.paths import RigPaths
from engine.queue.protocol import RigQueue


def cli_config(args: argparse.Namespace) -> GalaxyConfig:
    """galaxy.toml as the command finds it (``--config``, ``$GALAXY_CONFIG``, ./galaxy.toml ...)."""
    from engine.config import ConfigError, load_config, resolve_config_path

    try:
        return load_config(resolve_config_path(getattr(args, "config", None)))
    except ConfigError as exc:
        raise StoreOpenError(str(exc)) from None


def open_cli_queue(args: argparse.Namespace, *, use_inotify: bool = False) -> RigQueue:
    """The rig's queue in its store; ``StoreOpenError`` names what was wrong (config, url, no answer)."""
    from engine.store.open_queue import open_config_queue

    try:
        return open_config_queue(cli_config(args), RigPaths(args.root), os.environ, use_inotify=use_inotify)
    except (ValueError, RuntimeError, OSError) as exc:  # a bad $GALAXY_STORE, an evicting Redis, no answer
        raise StoreOpenError(f"store: {exc}") from None
