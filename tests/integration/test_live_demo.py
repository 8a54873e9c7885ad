"""`galaxy up --sim --demo` keeps the simulated rig busy from inside the supervisor; `galaxy down` stops both.

Real processes on a temporary root: the supervisor (with its demo feeder and simulated cloud),
its workers and the simulated Ollama servers. No dashboard (``--no-dashboard``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def galaxy(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """With an empty galaxy.toml of its own: a stray one in the checkout, ~/.config or /etc is not read."""
    config = root.parent / "galaxy.toml"
    if not config.exists():
        config.write_text("")
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config", str(config),
                           *args], check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ))


def demo_tasks(root: Path, state: str) -> list[dict[str, Any]]:
    folder = root / "tasks" / state
    out = []
    for p in folder.glob("*.json") if folder.is_dir() else ():
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if data.get("source") == "demo":
            out.append(data)
    return out


def wait_for(cond: Any, what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for: {what}")


def test_demo_feeds_the_rig_until_galaxy_down(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    up = galaxy(root, "up", "--sim", "--demo", "--gpus", "2", "--no-dashboard")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        done = wait_for(lambda: len(demo_tasks(root, "complete")) >= 3 and demo_tasks(root, "complete"),
                        "three demo tasks completed")
        assert {t["task_class"] for t in done} <= {"cpu", "script", "llm"}
        log = (root / "logs" / "supervisor.log").read_text()
        assert '"demo: feeding the rig"' in log and "127.0.0.1" in log  # the simulated cloud is on loopback
    finally:
        down = galaxy(root, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    time.sleep(1.0)
    count = sum(len(demo_tasks(root, s)) for s in ("queue", "processing", "complete", "failed", "delayed"))
    time.sleep(3.0)
    again = sum(len(demo_tasks(root, s)) for s in ("queue", "processing", "complete", "failed", "delayed"))
    assert again == count, "nothing is submitted once the supervisor is down"


def test_demo_needs_the_simulated_rig(tmp_path: Path) -> None:
    out = galaxy(tmp_path / "shared", "up", "--demo", "--no-dashboard", timeout=30)
    assert out.returncode == 2 and "--demo needs --sim" in out.stderr
