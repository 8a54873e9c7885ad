"""One supervisor per root, also across the release window: a start that opened the pid
file just before the holder released it must not end up holding a lock on a file that is
no longer there (which let a third start take the root too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.supervisor.pidfile import PidFile, SupervisorAlreadyRunning, running_supervisor_pid


def test_a_start_racing_the_release_still_leaves_one_supervisor(tmp_path: Path) -> None:
    path = tmp_path / "state" / "supervisor.pid"
    first = PidFile(path)
    first.acquire(pid=111)
    # the second start opens the file, then the first supervisor exits before the lock is tried
    second = PidFile(path, on_opened=first.release)
    second.acquire(pid=222)
    try:
        with pytest.raises(SupervisorAlreadyRunning) as refused:
            PidFile(path).acquire(pid=333)
        assert refused.value.pid == 222
        assert running_supervisor_pid(path) == 222
    finally:
        second.release()
    assert not path.exists()


def test_release_leaves_a_file_another_supervisor_owns(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.pid"
    old = PidFile(path)
    old.acquire(pid=111)
    path.unlink()  # removed by hand while it ran; a new supervisor took the root
    new = PidFile(path)
    new.acquire(pid=222)
    try:
        old.release()
        assert running_supervisor_pid(path) == 222, "the old one's exit must not remove the new one's file"
        with pytest.raises(SupervisorAlreadyRunning):
            PidFile(path).acquire(pid=333)
    finally:
        new.release()


def test_a_killed_holder_leaves_a_stale_file_the_next_start_takes(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.pid"
    script = ("import sys\nfrom engine.supervisor.pidfile import PidFile\n"
              f"PidFile({str(path)!r}).acquire()\nprint('locked', flush=True)\nsys.stdin.read()")
    holder = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(SupervisorAlreadyRunning) as refused:
            PidFile(path).acquire()
        assert refused.value.pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert path.exists() and running_supervisor_pid(path) is None
    nxt = PidFile(path)
    nxt.acquire(pid=444)
    assert running_supervisor_pid(path) == 444
    nxt.release()
