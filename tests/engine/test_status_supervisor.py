"""`galaxy status [--json]` names the supervisor: pid, start time, uptime (from its snapshot)."""

from __future__ import annotations

import json
import time

from engine.cli.main import main
from engine.paths import RigPaths
from engine.snapshot import SNAPSHOT_VERSION, Snapshot, write_snapshot


def test_status_json_has_the_supervisors_pid_and_uptime(tmp_path, capsys):
    root = tmp_path / "rig"
    paths = RigPaths(root).ensure()
    now = time.time()
    write_snapshot(paths.snapshot, Snapshot(version=SNAPSHOT_VERSION, seq=3, taken_at=now, rig="t", simulated=True,
                                            telemetry_status="simulated rig", supervisor_pid=4321,
                                            started_at=now - 3725.0))
    assert main(["--root", str(root), "status", "--json"]) == 0
    sup = json.loads(capsys.readouterr().out)["supervisor"]
    assert sup["pid"] == 4321 and sup["started_at"] == now - 3725.0
    assert sup["uptime_s"] == 3725.0 and sup["fresh"] is True
    assert main(["--root", str(root), "status"]) == 0
    assert "supervisor pid 4321, up 1h02m05s" in capsys.readouterr().out


def test_status_says_when_the_supervisor_went_quiet_and_null_without_one(tmp_path, capsys):
    root = tmp_path / "rig"
    paths = RigPaths(root).ensure()
    assert main(["--root", str(root), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["supervisor"] is None
    old = time.time() - 600
    write_snapshot(paths.snapshot, Snapshot(version=SNAPSHOT_VERSION, seq=3, taken_at=old, rig="t", simulated=True,
                                            telemetry_status="simulated rig", supervisor_pid=99, started_at=old - 5))
    assert main(["--root", str(root), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["supervisor"]["fresh"] is False
    assert main(["--root", str(root), "status"]) == 0
    out = capsys.readouterr().out
    assert "supervisor: no snapshot for 6" in out and "s (last from pid 99)" in out
