"""A systemd unit for the supervisor, so a rig comes back after a crash or a reboot.

Why these settings (docs/operator-guide.md, "Running galaxy at boot"):

- ``Restart=on-failure``: a SIGKILLed or crashed supervisor is started again; ``galaxy down``
  (exit 0) stays down.
- ``KillMode=mixed``: ``systemctl stop`` sends SIGTERM to the supervisor only. It asks its workers
  to finish or hand back their tasks within ``shutdown_grace_s`` (engine.supervisor, the workers'
  engine.worker.signals); only what is left after ``TimeoutStopSec`` gets SIGKILL.
- ``TimeoutStopSec``: the grace plus a margin, so systemd never kills a shutdown in progress.
- Absolute ``WorkingDirectory``, ``--root`` and ``--config``: a unit has no "current directory".

``GALAXY_SERVICE=<unit>`` in the environment (and systemd's ``$INVOCATION_ID``) lets the supervisor
record that it is service-managed (``state/service.json``), and ``galaxy up`` just attaches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.atomic import atomic_write_bytes

UNIT_NAME = "galaxy.service"
STOP_MARGIN_S = 30.0  # TimeoutStopSec = shutdown_grace_s + this
SERVICE_ENV = "GALAXY_SERVICE"
MARKER = "service.json"  # in state/: written by the supervisor when systemd runs it
INSTALLED = "service-installed.json"  # in state/: written by `galaxy service install`


@dataclass(frozen=True)
class UnitSpec:
    root: Path
    config: Path | None
    exec_argv: tuple[str, ...]  # the galaxy command itself (the venv's galaxy, or python -m engine.cli.main)
    shutdown_grace_s: float = 30.0
    user_unit: bool = True
    run_as: str | None = None  # system units: User= (the operator, not root)
    python_path: Path | None = None  # when galaxy is not installed into the venv: the repository
    log_level: str | None = None
    unit_name: str = UNIT_NAME
    description: str = "galaxy supervisor"

    @property
    def timeout_stop_s(self) -> int:
        return int(self.shutdown_grace_s + STOP_MARGIN_S)


def galaxy_command(python: str = sys.executable) -> tuple[tuple[str, ...], Path | None]:
    """The venv's ``galaxy`` script when installed; else ``python -m engine.cli.main`` plus the
    repository for PYTHONPATH."""
    script = Path(python).parent / "galaxy"
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script.absolute()),), None
    return (str(Path(python).absolute()), "-m", "engine.cli.main"), Path(__file__).resolve().parents[1]


def quote_arg(arg: str) -> str:
    """One ExecStart= word: ``%`` and ``$`` escaped (specifiers, variables), quoted when it has spaces."""
    escaped = arg.replace("\\", "\\\\").replace("%", "%%").replace("$", "$$").replace('"', '\\"')
    return f'"{escaped}"' if any(c.isspace() for c in arg) or escaped != arg else escaped


def _env_value(key: str, value: str) -> str:
    return quote_arg(f"{key}={value}")


def render_unit(spec: UnitSpec) -> str:
    argv = [*spec.exec_argv, "--root", str(spec.root.absolute())]
    if spec.config is not None:
        argv += ["--config", str(spec.config.absolute())]
    argv.append("supervise")
    if spec.log_level:
        argv += ["--log-level", spec.log_level]
    lines = [
        "# Written by `galaxy service install`; remove with `galaxy service uninstall`.",
        "[Unit]",
        f"Description={spec.description} ({spec.root.absolute()})".replace("%", "%%"),
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"WorkingDirectory={str(spec.root.absolute()).replace('%', '%%')}",  # the rest of the line, unquoted
        f"Environment={_env_value(SERVICE_ENV, spec.unit_name)}",
        f"Environment={_env_value('PYTHONUNBUFFERED', '1')}",
    ]
    if spec.python_path is not None:
        lines.append(f"Environment={_env_value('PYTHONPATH', str(spec.python_path))}")
    if not spec.user_unit and spec.run_as:
        lines.append(f"User={spec.run_as}")
    lines += [
        f"ExecStart={' '.join(quote_arg(a) for a in argv)}",
        "Restart=on-failure",
        "RestartSec=5",
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={spec.timeout_stop_s}",
        "",
        "[Install]",
        f"WantedBy={'default.target' if spec.user_unit else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


def unit_dir(user_unit: bool, env: dict[str, str] | None = None) -> Path:
    """Where systemd looks: ``$XDG_CONFIG_HOME/systemd/user`` or ``/etc/systemd/system``."""
    env = dict(os.environ) if env is None else env
    if not user_unit:
        return Path("/etc/systemd/system")
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "systemd" / "user"


class Systemctl(Protocol):
    def run(self, user_unit: bool, *args: str) -> tuple[int, str]:
        """``systemctl [--user] ARGS``: (exit status, output)."""
        ...


class RealSystemctl:
    def run(self, user_unit: bool, *args: str) -> tuple[int, str]:
        cmd = ["systemctl", *(["--user"] if user_unit else []), *args]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 127, f"{' '.join(cmd)}: {exc}"
        return out.returncode, (out.stdout + out.stderr).strip()


@dataclass
class FakeSystemctl:
    """Records the calls; answers ``is-active`` with ``active``."""

    active: bool = False
    calls: list[tuple[str, ...]] | None = None

    def run(self, user_unit: bool, *args: str) -> tuple[int, str]:
        self.calls = [*(self.calls or []), (("--user",) if user_unit else ()) + args]
        if args[:1] == ("is-active",):
            return (0, "active") if self.active else (3, "inactive")
        if args[:1] == ("start",):
            self.active = True
        return 0, ""


# ---------------------------------------------------------------- markers in state/

def write_marker(state_dir: Path, name: str, data: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    # a temp file of a fresh random name (O_EXCL), renamed over the marker: a link planted at a
    # fixed temp name in the shared state/ would have been written through
    atomic_write_bytes(state_dir / name, json.dumps(data, indent=1).encode())


def read_marker(state_dir: Path, name: str) -> dict[str, Any] | None:
    from engine import safeio

    try:
        data = safeio.read_json(state_dir / name, 64_000)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def note_service_run(state_dir: Path, env: dict[str, str] | os._Environ[str], pid: int) -> dict[str, Any] | None:
    """Called by the supervisor at start: under systemd (``$INVOCATION_ID``), say which unit runs it."""
    if not env.get("INVOCATION_ID"):
        try:
            (state_dir / MARKER).unlink()
        except OSError:
            pass
        return None
    data = {"pid": pid, "unit": env.get(SERVICE_ENV) or "unknown", "invocation_id": env["INVOCATION_ID"]}
    write_marker(state_dir, MARKER, data)
    return data
