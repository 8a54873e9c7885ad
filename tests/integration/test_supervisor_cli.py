"""``galaxy supervise --sim`` as a real daemon: snapshot marked simulated, worker verbs
acked through the snapshot, one supervisor per root, SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.paths import RigPaths
from engine.snapshot import read_snapshot

REPO = Path(__file__).resolve().parents[2]


def galaxy(root: Path, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root),
                           "--config", str(root / "none.toml"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


def wait_for(cond, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for: {what}")


def test_supervise_sim_daemon(tmp_path):
    root = tmp_path / "shared"
    paths = RigPaths(root)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config",
                             str(tmp_path / "none.toml"), "supervise", "--sim", "--gpus", "2", "--tick", "0.1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        snap = wait_for(lambda: paths.snapshot.exists() and read_snapshot(paths.snapshot), "first snapshot")
        assert snap.simulated and snap.telemetry_status.startswith("simulated rig")
        assert [w.worker_id for w in snap.workers] == ["gpu0", "gpu1"]
        assert all(w.endpoint and w.endpoint.startswith("http://127.0.0.1:") for w in snap.workers)

        second = galaxy(root, "supervise", "--sim")
        assert second.returncode == 1 and "already running" in second.stderr

        refused = galaxy(root, "pause", "nosuch")
        assert refused.returncode == 1 and "no worker named 'nosuch'" in refused.stdout
        ok = galaxy(root, "restart", "gpu1")
        assert ok.returncode == 0 and "restart gpu1: ok" in ok.stdout
        audit = [json.loads(x) for x in paths.audit.read_text().splitlines()]
        assert [(a["kind"], a["outcome"]) for a in audit] == [("pause", "refused"), ("restart", "ok")]
        assert all(a["source"].startswith("cli ") for a in audit)
        wait_for(lambda: (s := read_snapshot(paths.snapshot)) and all(w.state == "running" for w in s.workers)
                 and next(w for w in s.workers if w.worker_id == "gpu1").restarts == 1, "both running again")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]  # engine.logsetup JSON lines
    assert all({"time", "level", "logger", "message"} <= set(rec) for rec in logs)
    assert any(rec["message"] == "supervisor stopping" and "SIGTERM" in rec["fields"].get("reason", "")
               for rec in logs)
    stopping = next(i for i, rec in enumerate(logs) if rec["message"] == "supervisor stopping")
    exits = {rec["fields"]["worker"]: rec["fields"]["code"] for rec in logs[stopping:]
             if rec["message"] == "worker exited"}
    assert exits == {"gpu0": 0, "gpu1": 0}, exits  # idle workers exit on SIGTERM by themselves, none killed
    assert not any("did not stop in time" in rec["message"] for rec in logs)
    worker_log = [json.loads(x) for x in (root / "logs" / "workers" / "gpu0.log").read_text().splitlines()]
    assert any(rec["message"] == "worker started" and rec["logger"] == "galaxy.worker.gpu0" for rec in worker_log)
    assert not paths.supervisor_pid.exists()
    final = read_snapshot(paths.snapshot)
    assert all(w.state in ("stopped", "fatal") for w in final.workers)


def test_verb_without_a_supervisor_says_so(tmp_path):
    r = galaxy(tmp_path / "shared", "drain", "gpu0", "--wait", "0.2")
    assert r.returncode == 3 and "no supervisor is running" in r.stdout
