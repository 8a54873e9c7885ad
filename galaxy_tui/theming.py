"""Themes live as data in ``themes/*.toml`` next to the stylesheet, which uses only variables."""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.theme import Theme

THEMES_DIR = Path(__file__).resolve().parent.parent / "themes"
STYLESHEET = THEMES_DIR / "dashboard.tcss"
DEFAULT_THEME = "galaxy-dark"
THEME_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground", "background",
              "surface", "panel", "boost")


def load_themes(directory: Path = THEMES_DIR) -> list[Theme]:
    """Every ``*.toml`` theme, default first; a broken file raises naming the file."""
    themes = []
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text())
            themes.append(Theme(name=str(data["name"]), dark=bool(data.get("dark", True)),
                                **{k: str(data[k]) for k in THEME_KEYS if k in data}))
        except (tomllib.TOMLDecodeError, KeyError) as exc:
            raise ValueError(f"{path}: bad theme: {exc}") from exc
    themes.sort(key=lambda t: t.name != DEFAULT_THEME)
    return themes
