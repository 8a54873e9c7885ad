"""One supervisor per root: ``state/supervisor.pid`` holds the pid under an exclusive flock.

The lock (not the pid's presence) decides: a supervisor killed with SIGKILL leaves a pid
file behind, but the kernel drops its lock, so the next start succeeds; a second start
while the first runs is refused with the first one's pid. ``galaxy up/down`` read the pid.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class SupervisorAlreadyRunning(RuntimeError):
    def __init__(self, path: Path, pid: int | None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"a supervisor is already running on this root ({who}, {path}); "
                         "stop it first ('galaxy down' or kill -TERM it)")


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, pid: int | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = read_pid(self.path)
            os.close(fd)
            raise SupervisorAlreadyRunning(self.path, other) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{pid or os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None


def read_pid(path: Path) -> int | None:
    try:
        text = Path(path).read_text().strip()
        return int(text) if text else None
    except (FileNotFoundError, ValueError):
        return None


def running_supervisor_pid(path: Path) -> int | None:
    """The live supervisor's pid, or None (no file, or a stale file whose lock is free)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_pid(path)
    finally:
        os.close(fd)
    return None


def pid_alive(pid: int | None) -> bool | None:
    """Is a process with this pid running here? None when we cannot tell (no pid, no access)."""
    if not pid:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; it is someone else's
    except OSError:
        return None
    return True
