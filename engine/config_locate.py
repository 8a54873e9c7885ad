"""Where galaxy.toml and the shared root are, so ``ssh rig galaxy status`` works from any directory.

The config is the first of: ``--config``, ``$GALAXY_CONFIG``, ``./galaxy.toml``,
``$XDG_CONFIG_HOME/galaxy/galaxy.toml`` (default ``~/.config``), ``/etc/galaxy/galaxy.toml``.
The root is ``--root``, else ``$GALAXY_ROOT``, else the config's ``[rig] root`` (relative to the
config file's directory), else ``./shared``. Everything is a parameter (environment, working
directory, /etc) so tests need no monkeypatching.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine import safeio

CONFIG_ENV = "GALAXY_CONFIG"
ROOT_ENV = "GALAXY_ROOT"
SYSTEM_CONFIG = Path("/etc/galaxy/galaxy.toml")
MAX_PEEK_BYTES = 1_000_000  # the same limit as engine.config


@dataclass(frozen=True)
class Located:
    """A path and how it was found (``--config``, ``$GALAXY_CONFIG``, ``./galaxy.toml``, ...)."""

    path: Path | None
    how: str


def config_candidates(explicit: Path | None, env: Mapping[str, str], cwd: Path,
                      system: Path = SYSTEM_CONFIG) -> list[Located]:
    """Every place looked at, in order (``galaxy config show`` lists them)."""
    out: list[Located] = []
    if explicit is not None:
        out.append(Located(_abs(explicit, cwd), "--config"))
    if env.get(CONFIG_ENV):
        out.append(Located(_abs(Path(env[CONFIG_ENV]), cwd), f"${CONFIG_ENV}"))
    out.append(Located(cwd / "galaxy.toml", "./galaxy.toml"))
    xdg = env.get("XDG_CONFIG_HOME") or (str(Path(env["HOME"]) / ".config") if env.get("HOME") else "")
    if xdg:
        out.append(Located(Path(xdg) / "galaxy" / "galaxy.toml", "$XDG_CONFIG_HOME/galaxy/galaxy.toml"))
    out.append(Located(system, str(SYSTEM_CONFIG)))
    return out


def locate_config(explicit: Path | None, env: Mapping[str, str], cwd: Path,
                  system: Path = SYSTEM_CONFIG) -> Located:
    """The config to use. An explicit ``--config`` or ``$GALAXY_CONFIG`` is used even when it does
    not exist yet (``galaxy init`` writes it; loading reports it); the rest must exist."""
    for cand in config_candidates(explicit, env, cwd, system):
        if cand.how in ("--config", f"${CONFIG_ENV}"):
            return cand
        if cand.path is not None and cand.path.is_file():
            return cand
    return Located(None, "none found")


def resolve_root(explicit: Path | None, env: Mapping[str, str], cwd: Path, config: Path | None) -> Located:
    """``--root``, ``$GALAXY_ROOT``, the config's ``[rig] root``, then ``./shared``; absolute."""
    if explicit is not None:
        return Located(_abs(explicit, cwd), "--root")
    if env.get(ROOT_ENV):
        return Located(_abs(Path(env[ROOT_ENV]), cwd), f"${ROOT_ENV}")
    if config is not None:
        root = peek_rig_root(config)
        if root is not None:
            return Located(_abs(root, config.parent), f"{config} [rig] root")
    return Located(_abs(Path("shared"), cwd), "default ./shared")


def peek_rig_root(config: Path) -> Path | None:
    """``[rig] root`` without validating the rest (a bad file is reported by the command that loads it)."""
    try:  # bounded, and a FIFO or device at the config's name is refused at once (UnsafeFileError: a ValueError)
        raw = safeio.read_bytes(config, MAX_PEEK_BYTES, follow_symlinks=True)
        data = tomllib.loads(raw.decode())
    except (OSError, ValueError, RecursionError):
        return None
    rig = data.get("rig")
    root = rig.get("root") if isinstance(rig, dict) else None
    return Path(os.path.expanduser(root)) if isinstance(root, str) and root.strip() else None


def _abs(path: Path, base: Path) -> Path:
    path = Path(os.path.expanduser(str(path)))
    return Path(os.path.normpath(path if path.is_absolute() else base / path))
