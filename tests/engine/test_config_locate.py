"""galaxy.toml and the root found from anywhere (``ssh rig galaxy status`` from $HOME)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.config import load_config
from engine.config_locate import locate_config, resolve_root
from engine.config_show import effective_values
from engine.paths import RigPaths

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_search_order_flag_env_cwd_xdg_etc(tmp_path: Path) -> None:
    cwd, xdg, etc = tmp_path / "cwd", tmp_path / "xdg", tmp_path / "etc" / "galaxy.toml"
    cwd.mkdir()
    env = {"XDG_CONFIG_HOME": str(xdg), "HOME": str(tmp_path / "home")}
    assert locate_config(None, env, cwd, etc).how == "none found"
    _write(etc, "")
    assert locate_config(None, env, cwd, etc).path == etc
    _write(xdg / "galaxy" / "galaxy.toml", "")
    assert locate_config(None, env, cwd, etc).how == "$XDG_CONFIG_HOME/galaxy/galaxy.toml"
    _write(cwd / "galaxy.toml", "")
    assert locate_config(None, env, cwd, etc).path == cwd / "galaxy.toml"
    env["GALAXY_CONFIG"] = "rel/g.toml"  # relative to the working directory, used even before it exists
    assert locate_config(None, env, cwd, etc).path == cwd / "rel" / "g.toml"
    assert locate_config(Path("/x/y.toml"), env, cwd, etc).how == "--config"


def test_xdg_defaults_to_home_dot_config(tmp_path: Path) -> None:
    cfg = _write(tmp_path / ".config" / "galaxy" / "galaxy.toml", "")
    assert locate_config(None, {"HOME": str(tmp_path)}, tmp_path / "nowhere", tmp_path / "etc").path == cfg


def test_rig_root_is_relative_to_the_config_and_flags_override_it(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "conf" / "galaxy.toml", '[rig]\nroot = "../rig"\n')
    cwd = tmp_path / "elsewhere"
    assert resolve_root(None, {}, cwd, cfg).path == tmp_path / "rig"
    assert load_config(cfg).root == tmp_path / "rig"
    assert resolve_root(None, {"GALAXY_ROOT": "/srv/r"}, cwd, cfg).path == Path("/srv/r")
    assert resolve_root(Path("mine"), {"GALAXY_ROOT": "/srv/r"}, cwd, cfg).path == cwd / "mine"
    assert resolve_root(None, {}, cwd, None).path == cwd / "shared"
    bad = _write(tmp_path / "bad.toml", "[rig\n")  # a broken file does not decide the root; loading reports it
    assert resolve_root(None, {}, cwd, bad).how == "default ./shared"


def test_config_show_names_file_line_and_default(tmp_path: Path) -> None:
    cfg_path = _write(tmp_path / "galaxy.toml", '[rig]\nname = "r1"\n\n[thresholds]\nlease_s = 60.0\n')
    cfg = load_config(cfg_path)
    shown = {v.key: v for v in effective_values(cfg, root=tmp_path / "shared", root_how="--root",
                                                config_how="--config")}
    assert shown["thresholds.lease_s"].value == 60.0
    assert shown["thresholds.lease_s"].source == f"{cfg_path}:5"
    assert shown["rig.name"].source == f"{cfg_path}:2"
    assert shown["thresholds.temp_hot_c"].source == "default"
    assert shown["rig.root"].source == "--root"
    assert shown["log.level"].value == "info"


def _galaxy(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("GALAXY_ROOT", "GALAXY_CONFIG", "XDG_CONFIG_HOME")}
    full.update(env, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *args], check=False, cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=120)


def test_status_from_an_empty_directory_finds_the_rig_through_home_config(tmp_path: Path) -> None:
    root = tmp_path / "rig" / "shared"
    RigPaths(root).ensure()
    home, empty = tmp_path / "home", tmp_path / "empty"
    empty.mkdir()
    _write(home / ".config" / "galaxy" / "galaxy.toml", f'[rig]\nroot = "{root}"\n')
    for env in ({"HOME": str(home)}, {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(home / ".config")}):
        out = _galaxy(["status", "--json"], empty, env)
        assert out.returncode == 0, out.stderr
        assert isinstance(json.loads(out.stdout), dict)
        shown = _galaxy(["config", "show", "--json"], empty, env)
        data = json.loads(shown.stdout)
        assert data["root"] == str(root)
        assert data["config_found_by"] == "$XDG_CONFIG_HOME/galaxy/galaxy.toml"
    assert not (empty / "shared").exists()
