"""`galaxy cluster add|remove|status|route` and `galaxy escalations` on a config file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from engine.cli.main import main


def run(tmp_path: Path, *argv: str) -> int:
    return main(["--root", str(tmp_path / "shared"), "--config", str(tmp_path / "galaxy.toml"), *argv])


def test_add_status_route_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "galaxy.toml").write_text('# my rig\n[rig]\nname = "rig"\n')
    assert run(tmp_path, "cluster", "add", "w1", "--endpoint", "http://127.0.0.1:11435", "--model",
               "qwen2.5:7b", "--tier", "0") == 0
    assert run(tmp_path, "cluster", "add", "cloud", "--endpoint", "https://api.example", "--backend", "anthropic",
               "--model", "claude", "--tier", "2", "--external", "--auth-env", "KEY") == 0
    data = tomllib.loads((tmp_path / "galaxy.toml").read_text())
    assert [n["name"] for n in data["node"]] == ["w1", "cloud"]
    assert "# my rig" in (tmp_path / "galaxy.toml").read_text(), "the operator's comments survive"
    capsys.readouterr()
    assert run(tmp_path, "cluster", "status") == 0
    out = capsys.readouterr().out
    assert "w1" in out and "external" in out
    assert run(tmp_path, "cluster", "route", "extract the date") == 0
    assert "try w1" in capsys.readouterr().out
    assert run(tmp_path, "cluster", "remove", "w1") == 0
    assert [n["name"] for n in tomllib.loads((tmp_path / "galaxy.toml").read_text())["node"]] == ["cloud"]
    assert run(tmp_path, "cluster", "remove", "w1") == 1


def test_bad_node_is_refused_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "galaxy.toml").write_text("")
    assert run(tmp_path, "cluster", "add", "bad/name", "--endpoint", "http://x", "--model", "m", "--tier", "0") == 1
    assert "name" in capsys.readouterr().out
    assert run(tmp_path, "cluster", "add", "c", "--endpoint", "https://x", "--backend", "anthropic",
               "--model", "m", "--tier", "2") == 1
    assert "--external" in capsys.readouterr().out
    assert run(tmp_path, "cluster", "add", "a", "--endpoint", "ftp://x", "--model", "m", "--tier", "0") == 1
    (tmp_path / "galaxy.toml").write_text('[[node]]\nname = "a"\nendpoint = "http://x"\nbackend = "ollama"\n'
                                          'model = "m"\ntier = 0\ncolour = "red"\n')
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, "cluster", "status")
    assert "colour" in str(exc.value)


def test_escalations_lists_nothing_pending(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "galaxy.toml").write_text("")
    assert run(tmp_path, "escalations") == 0
    assert "no escalations pending" in capsys.readouterr().out
    assert run(tmp_path, "deny", "esc-x", "--reason", "no") == 1
    assert capsys.readouterr().err == "galaxy: no escalation 'esc-x'\n"
    assert run(tmp_path, "approve", "esc-x") == 1
    assert capsys.readouterr().err == "galaxy: no escalation 'esc-x'\n"


def test_misspelt_routing_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "galaxy.toml").write_text("[routing]\nbreakr_failures = 3\n")
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, "cluster", "status")
    assert "[routing]: unknown key(s) breakr_failures" in str(exc.value) and "breaker_failures" in str(exc.value)


def test_an_anthropic_node_not_marked_external_is_a_config_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "galaxy.toml").write_text('[[node]]\nname = "cloud"\nendpoint = "https://api.anthropic.com"\n'
                                          'backend = "anthropic"\nmodel = "claude"\ntier = 2\n')
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, "cluster", "route", "extract the date")
    assert "node #1" in str(exc.value) and "external = true" in str(exc.value)
