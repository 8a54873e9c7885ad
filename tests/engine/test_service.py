"""galaxy service install/uninstall: a unit systemd accepts, and `galaxy up` attaching to it."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.cli.cmd_service import run_install, run_uninstall
from engine.cli.cmd_tui import run_up
from engine.paths import RigPaths
from engine.service import (
    INSTALLED,
    MARKER,
    FakeSystemctl,
    UnitSpec,
    note_service_run,
    quote_arg,
    read_marker,
    render_unit,
)
from engine.supervisor.pidfile import PidFile

SPEC = UnitSpec(root=Path("/srv/rig one/shared"), config=Path("/etc/galaxy/galaxy.toml"),
                exec_argv=("/opt/galaxy/.venv/bin/galaxy",), shutdown_grace_s=45.0, user_unit=False, run_as="ops")


def _settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_unit_restarts_on_failure_and_outlasts_the_workers_grace() -> None:
    s = _settings(render_unit(SPEC))
    assert s["Restart"] == ["on-failure"] and s["KillMode"] == ["mixed"] and s["KillSignal"] == ["SIGTERM"]
    assert int(s["TimeoutStopSec"][0]) > SPEC.shutdown_grace_s  # systemd never SIGKILLs a clean hand-back
    assert s["WorkingDirectory"] == ["/srv/rig one/shared"] and s["User"] == ["ops"]
    assert s["ExecStart"] == [('/opt/galaxy/.venv/bin/galaxy --root "/srv/rig one/shared" '
                               "--config /etc/galaxy/galaxy.toml supervise")]
    assert s["WantedBy"] == ["multi-user.target"]
    user = _settings(render_unit(UnitSpec(root=Path("/r"), config=None, exec_argv=("/g",), user_unit=True)))
    assert "User" not in user and user["WantedBy"] == ["default.target"] and "--config" not in user["ExecStart"][0]


def test_specifiers_and_variables_are_escaped() -> None:
    assert quote_arg("/a/100%/$HOME") == '"/a/100%%/$$HOME"'
    assert quote_arg("/plain/path") == "/plain/path"


def _verify(unit: Path, *, user: bool, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package 'systemd'; scripts/test.sh installs it)")
    env = dict(os.environ)
    if user:
        run = tmp_path / "xdg-runtime"
        run.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(run)  # a user manager needs one, even for an offline verify
    cmd = ["systemd-analyze", "verify", *(["--user"] if user else []), str(unit)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)


def _args(tmp_path: Path, **kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"root": tmp_path / "rig 1" / "shared", "config": None, "user": False,
                               "name": "galaxy", "unit_dir": tmp_path / "units", "print_only": False,
                               "enable": False, "log_level": None, "force": False}
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("user", [False, True])
def test_systemd_analyze_verify_accepts_the_installed_unit(tmp_path: Path, user: bool) -> None:
    args = _args(tmp_path, user=user)
    assert run_install(args) == 0
    unit = tmp_path / "units" / "galaxy.service"
    out = _verify(unit, user=user, tmp_path=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Failed" not in out.stderr, out.stderr  # e.g. a specifier it could not resolve


def test_systemd_analyze_verify_rejects_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a relative working directory is refused."""
    args = _args(tmp_path)
    assert run_install(args) == 0
    unit = tmp_path / "units" / "galaxy.service"
    unit.write_text(unit.read_text().replace("WorkingDirectory=/", "WorkingDirectory=relative/"))
    assert _verify(unit, user=False, tmp_path=tmp_path).returncode != 0


def test_install_enable_uninstall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctl = FakeSystemctl()
    args = _args(tmp_path, user=True, enable=True)
    assert run_install(args, systemctl=ctl) == 0
    assert ctl.calls == [("--user", "daemon-reload"), ("--user", "enable", "--now", "galaxy.service")]
    state = RigPaths(args.root).state
    assert read_marker(state, INSTALLED) == {"unit": "galaxy.service", "user": True,
                                             "path": str(tmp_path / "units" / "galaxy.service")}
    (tmp_path / "units" / "other.service").write_text("[Service]\nExecStart=/bin/true\n")
    assert run_install(_args(tmp_path, name="other")) == 1  # not ours: left alone without --force
    assert run_uninstall(args, systemctl=ctl) == 0
    assert not (tmp_path / "units" / "galaxy.service").exists() and read_marker(state, INSTALLED) is None
    assert ("--user", "disable", "--now", "galaxy.service") in (ctl.calls or [])


def test_print_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_install(_args(tmp_path, print_only=True)) == 0
    assert "KillMode=mixed" in capsys.readouterr().out and not (tmp_path / "units").exists()


def test_supervisor_notes_it_runs_under_systemd(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert note_service_run(state, {"INVOCATION_ID": "abc", "GALAXY_SERVICE": "galaxy.service"}, 42) == {
        "pid": 42, "unit": "galaxy.service", "invocation_id": "abc"}
    assert note_service_run(state, {}, 43) is None and not (state / MARKER).exists()  # a hand-started one clears it


def _up_args(root: Path) -> argparse.Namespace:
    return argparse.Namespace(root=root, config=None, sim=True, gpus=1, demo=False, read_only=False,
                              no_dashboard=True, log_level=None)


def test_up_attaches_to_the_service_managed_supervisor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = RigPaths(tmp_path / "shared").ensure()
    pidfile = PidFile(paths.supervisor_pid)
    pidfile.acquire()
    try:
        note_service_run(paths.state, {"INVOCATION_ID": "x", "GALAXY_SERVICE": "galaxy.service"}, os.getpid())
        ctl = FakeSystemctl()
        assert run_up(_up_args(paths.root), systemctl=ctl) == 0
        assert ctl.calls is None  # nothing started
        assert "runs as systemd service galaxy.service" in capsys.readouterr().err
    finally:
        pidfile.release()


class _StartingSystemctl(FakeSystemctl):
    """systemctl start that 'starts' a supervisor: the first snapshot appears."""

    def __init__(self, snapshot: Path) -> None:
        super().__init__()
        self.snapshot = snapshot

    def run(self, user_unit: bool, *args: str) -> tuple[int, str]:
        if args[:1] == ("start",):
            self.snapshot.write_text("{}")
        return super().run(user_unit, *args)


def test_up_starts_an_installed_service_instead_of_a_second_supervisor(tmp_path: Path) -> None:
    args = _args(tmp_path, user=True)
    assert run_install(args) == 0
    ctl = _StartingSystemctl(RigPaths(args.root).snapshot)
    assert run_up(_up_args(args.root), systemctl=ctl) == 0
    assert ctl.calls == [("--user", "start", "galaxy.service")]
    assert not RigPaths(args.root).supervisor_pid.exists()  # galaxy up started no supervisor of its own


def test_a_missing_config_is_refused_and_a_bad_one_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_install(_args(tmp_path, config=tmp_path / "nope.toml")) == 2
    assert "nope.toml: no such file" in capsys.readouterr().err
    bad = tmp_path / "galaxy.toml"
    bad.write_text("[thresholds]\nshutdown_grace_s = -1\n")
    assert run_install(_args(tmp_path, config=bad)) == 2
    assert f"{bad}:2: thresholds.shutdown_grace_s" in capsys.readouterr().err
    bad.write_text("[thresholds]\nshutdown_grace_s = 90\n")
    assert run_install(_args(tmp_path, config=bad, print_only=True)) == 0
    assert "TimeoutStopSec=120" in capsys.readouterr().out and not (tmp_path / "units").exists()


class _GoneSystemctl(FakeSystemctl):
    def run(self, user_unit: bool, *args: str) -> tuple[int, str]:
        super().run(user_unit, *args)
        return 5, "Failed to start galaxy.service: Unit galaxy.service not found."


def test_up_forgets_a_unit_removed_by_hand_and_starts_the_supervisor_itself(tmp_path: Path) -> None:
    from engine.cli.cmd_tui import run_down

    args = _args(tmp_path, user=True)
    assert run_install(args) == 0
    (tmp_path / "units" / "galaxy.service").unlink()  # `rm` + daemon-reload, not `galaxy service uninstall`
    ctl = _GoneSystemctl()
    try:
        assert run_up(_up_args(args.root), systemctl=ctl) == 0
        assert ctl.calls == [("--user", "start", "galaxy.service")]
        assert read_marker(RigPaths(args.root).state, INSTALLED) is None
        assert RigPaths(args.root).supervisor_pid.exists()  # started the usual way
    finally:
        assert run_down(argparse.Namespace(root=args.root, wait=60.0)) == 0
