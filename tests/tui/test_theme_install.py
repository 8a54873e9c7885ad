"""The shipped themes are found from an installed (non-editable) galaxy too, not only from
a checkout: a wheel carries them as ``galaxy_tui/themes`` package data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from galaxy_tui.theming import find_themes_dir

REPO = Path(__file__).resolve().parents[2]


def _themes(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "dashboard.tcss").write_text("Screen { background: $background; }\n")
    (folder / "galaxy-dark.toml").write_text('name = "galaxy-dark"\n')
    return folder


def test_an_installed_layout_finds_the_themes_inside_the_package(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    shipped = _themes(site / "galaxy_tui" / "themes")
    assert find_themes_dir(site / "galaxy_tui") == shipped


def test_a_checkout_without_the_link_finds_the_top_level_folder(tmp_path: Path) -> None:
    (tmp_path / "galaxy_tui").mkdir()
    top = _themes(tmp_path / "themes")
    assert find_themes_dir(tmp_path / "galaxy_tui") == top


def test_no_themes_anywhere_names_the_places_it_looked(tmp_path: Path) -> None:
    (tmp_path / "galaxy_tui").mkdir()
    with pytest.raises(FileNotFoundError) as err:
        find_themes_dir(tmp_path / "galaxy_tui")
    assert str(tmp_path / "galaxy_tui" / "themes") in str(err.value) and str(tmp_path / "themes") in str(err.value)


def test_a_non_editable_install_loads_the_shipped_themes(tmp_path: Path) -> None:
    """``pip install .`` (no deps; the build backend of this venv) into a throwaway target, then
    import from there in a fresh interpreter away from the checkout."""
    src = tmp_path / "src"
    src.mkdir()
    keep = ["pyproject.toml", "engine", "galaxy_tui", "themes"] + (["README.md"] if (REPO / "README.md").exists() else [])
    for name in keep:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("galaxy\n")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, cwd=tmp_path, timeout=120)
    probe = ("import json, galaxy_tui, galaxy_tui.theming as t\n"
             "print(json.dumps({'pkg': galaxy_tui.__file__, 'dir': str(t.THEMES_DIR), 'css': t.STYLESHEET.is_file(),"
             " 'names': [x.name for x in t.load_themes()]}))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", probe], check=True, cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    found = json.loads(out.stdout)
    assert found["pkg"].startswith(str(target)), "imported the installed copy, not the checkout"
    assert found["dir"] == str(target / "galaxy_tui" / "themes") and found["css"]
    assert found["names"][0] == "galaxy-dark" and "galaxy-high-contrast" in found["names"]
