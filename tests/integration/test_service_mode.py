"""The supervisor as systemd runs it, without systemd: $INVOCATION_ID set and stderr the "journal"
($JOURNAL_STREAM names the pipe). It logs plain <N> lines, records state/service.json, `galaxy up`
just attaches, and SIGTERM (systemctl stop, KillMode=mixed) stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.paths import RigPaths
from engine.service import MARKER, read_marker

REPO = Path(__file__).resolve().parents[2]


def _wait(cond, what: str, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for: {what}")


def test_supervisor_under_systemd_logs_to_the_journal_and_up_attaches(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    paths = RigPaths(root)
    read_fd, write_fd = os.pipe()
    st = os.fstat(write_fd)
    env = {**os.environ, "PYTHONPATH": str(REPO), "INVOCATION_ID": "0123abcd", "GALAXY_SERVICE": "galaxy.service",
           "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    cmd = [sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config", str(tmp_path / "none.toml"),
           "supervise", "--sim", "--gpus", "1", "--tick", "0.1"]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=write_fd,
                            cwd=tmp_path)
    os.close(write_fd)
    try:
        marker = _wait(lambda: read_marker(paths.state, MARKER), "state/service.json")
        assert marker == {"pid": proc.pid, "unit": "galaxy.service", "invocation_id": "0123abcd"}
        _wait(paths.snapshot.exists, "first snapshot")
        worker_log = root / "logs" / "workers" / "gpu0.log"
        _wait(lambda: worker_log.exists() and "worker started" in worker_log.read_text(), "the worker's own log")
        up = subprocess.run([*cmd[:7], "up", "--no-dashboard"], env={**env, "INVOCATION_ID": ""}, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
        assert up.returncode == 0, up.stderr
        assert f"runs as systemd service galaxy.service (pid {proc.pid}); attaching" in up.stderr
    finally:
        proc.send_signal(signal.SIGTERM)  # what systemctl stop sends to the main process only
        code = proc.wait(timeout=120)
    with os.fdopen(read_fd, "r") as fh:
        journal = fh.read().splitlines()
    assert code == 0
    assert journal and all(line.startswith("<") for line in journal), journal[:5]
    assert any(line.startswith("<6>galaxy.supervisor: supervisor starting") for line in journal)
    assert any(line.startswith("<6>galaxy.supervisor: supervisor stopping") and "SIGTERM" in line for line in journal)
    assert not any(line.lstrip().startswith("{") for line in journal)  # no JSON, no time stamps: journald adds them
    records = [json.loads(x) for x in worker_log.read_text().splitlines()]
    assert any(r["message"] == "worker stopped" for r in records)  # the worker handed back and exited on its own
