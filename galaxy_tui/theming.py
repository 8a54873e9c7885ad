"""Themes live as data in ``themes/*.toml`` next to the stylesheet, which uses only variables.

``themes/`` at the top of the checkout is the source; wheels ship it as ``galaxy_tui/themes``."""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.theme import Theme


def find_themes_dir(package_dir: Path) -> Path:
    """The shipped themes. Installed, they are package data in ``galaxy_tui/themes`` (in a
    checkout that path is a link to the top-level ``themes/``, the folder you edit); a copy
    of the tree that lost the link still finds the top-level folder."""
    candidates = (package_dir / "themes", package_dir.parent / "themes")
    for folder in candidates:
        if (folder / "dashboard.tcss").is_file():
            return folder
    raise FileNotFoundError("galaxy_tui: no themes folder with dashboard.tcss in "
                            + " or ".join(str(c) for c in candidates) + " (reinstall galaxy)")


THEMES_DIR = find_themes_dir(Path(__file__).parent)
STYLESHEET = THEMES_DIR / "dashboard.tcss"
DEFAULT_THEME = "galaxy-dark"


def _theme(data: dict[str, object]) -> Theme:
    """A Theme from a theme file's table; ``name`` and ``primary`` are required (KeyError)."""

    def opt(key: str) -> str | None:
        value = data.get(key)
        return None if value is None else str(value)

    return Theme(name=str(data["name"]), primary=str(data["primary"]), dark=bool(data.get("dark", True)),
                 secondary=opt("secondary"), warning=opt("warning"), error=opt("error"), success=opt("success"),
                 accent=opt("accent"), foreground=opt("foreground"), background=opt("background"),
                 surface=opt("surface"), panel=opt("panel"), boost=opt("boost"))


def load_themes(directory: Path = THEMES_DIR) -> list[Theme]:
    """Every ``*.toml`` theme, default first; a broken file raises naming the file."""
    themes = []
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text())
            themes.append(_theme(data))
        except (tomllib.TOMLDecodeError, KeyError) as exc:
            raise ValueError(f"{path}: bad theme: {exc}") from exc
    themes.sort(key=lambda t: t.name != DEFAULT_THEME)
    return themes
