"""One supervisor per root: ``state/supervisor.pid`` holds the pid under an exclusive flock.

The lock (not the pid's presence) decides: a supervisor killed with SIGKILL leaves a pid
file behind, but the kernel drops its lock, so the next start succeeds; a second start
while the first runs is refused with the first one's pid. ``galaxy up/down`` read the pid.

The file is unlinked on release, so a start that opened it just before is left holding a
lock on a file no longer at the path: ``acquire`` checks, after locking, that its file is
still the one at the path (same device and inode) and otherwise opens it again.

``state/`` is in the shared root: the pid file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and
must be a regular file, so a link planted at its name never makes the supervisor truncate and
overwrite the file it points at, and a FIFO never blocks the start (``UnsafePidFile``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable
from pathlib import Path

from engine import safeio


class SupervisorAlreadyRunning(RuntimeError):
    def __init__(self, path: Path, pid: int | None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"a supervisor is already running on this root ({who}, {path}); "
                         "stop it first ('galaxy down' or kill -TERM it)")


class UnsafePidFile(RuntimeError):
    """Something other than a regular file sits at the pid file's name: nothing is written."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"the supervisor's pid file {path} {what}; it is left untouched: "
                         "remove it and start again")


class PidFile:
    def __init__(self, path: Path, *, on_opened: Callable[[], None] | None = None) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._on_opened = on_opened or (lambda: None)  # test seam: runs between open and lock

    def acquire(self, pid: int | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = _open_pid_file(self.path)
            self._on_opened()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = read_pid(self.path)
                os.close(fd)
                raise SupervisorAlreadyRunning(self.path, other) from None
            if _same_file(fd, self.path):
                break
            # the holder released (unlinked) it between our open and our lock: this inode is no
            # longer the pid file, so its lock guards nothing; open the current one again
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{pid or os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Unlink while still holding the lock, and only if the path is still our file (a
        supervisor that started after ours was removed by hand keeps its own)."""
        if self._fd is None:
            return
        try:
            if _same_file(self._fd, self.path):
                self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None


def _open_pid_file(path: Path) -> int:
    """The pid file for writing: never through a link, never a FIFO or device (``UnsafePidFile``)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePidFile(path, "is a symlink") from None
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EISDIR, errno.EOPNOTSUPP):
            raise UnsafePidFile(path, f"is not a regular file ({exc.strerror})") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePidFile(path, "is not a regular file")
    return fd


def _same_file(fd: int, path: Path) -> bool:
    """Is the open file ``fd`` still the one at ``path`` (the name itself: ``lstat``)?"""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def read_pid(path: Path) -> int | None:
    try:  # the bounded reader: a FIFO or link left in state/ never blocks `galaxy status`
        text = safeio.read_text(path, 64).strip()
        return int(text) if text else None
    except (FileNotFoundError, ValueError):  # UnsafeFileError is a ValueError
        return None


def running_supervisor_pid(path: Path) -> int | None:
    """The live supervisor's pid, or None (no file, or a stale file whose lock is free)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO here must not block `galaxy status`
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
