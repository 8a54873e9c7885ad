"""Dashboard preferences that outlive a run (today: the theme), in a small TOML file under the
user's config dir (``$XDG_CONFIG_HOME/galaxy/dashboard.toml``, default ``~/.config``).

Per user, not per rig: the same operator attaching to two rigs wants the same colours. A
missing or unreadable file means defaults; a failed write is reported, never fatal."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from engine.atomic import atomic_write_bytes


def default_prefs_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "galaxy" / "dashboard.toml"


def load_theme(path: Path | None) -> str | None:
    """The remembered theme name, or None (no file, unreadable, or no ``theme`` key)."""
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            data = tomllib.loads(fh.read(65536).decode("utf-8", "replace"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    theme = data.get("theme")
    return theme if isinstance(theme, str) else None


def save_theme(path: Path | None, theme: str) -> str | None:
    """Remember ``theme``; returns an error to show, or None."""
    if path is None:
        return None
    safe = theme.replace("\\", "").replace('"', "")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, f'# galaxy dashboard preferences (written by the dashboard)\ntheme = "{safe}"\n'
                           .encode())
    except OSError as exc:
        return f"could not remember the theme in {path}: {exc.strerror or exc}"
    return None
