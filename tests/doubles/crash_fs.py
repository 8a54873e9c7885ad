"""A filesystem layer (engine.queue.fsops.FsOps) that dies after step k, or runs out of space.

``CrashingFs(crash_after=k)`` performs k write steps, then raises ``SimulatedCrash`` on the
next one and on every later one: the process is "dead", so no cleanup handler gets to
write anything either (locks and descriptors are let go, as the kernel would). With
``torn=True`` the fatal step, when it writes data, writes half of it first (a kill in the
middle of a write). ``full=True`` makes every data write fail with ENOSPC after
``space`` more bytes (a short write first, as a real disk does).
"""

from __future__ import annotations

import errno
import os

from engine.queue.fsops import PathLike, RealFs, WriteError


class SimulatedCrash(BaseException):
    """The process died here (BaseException: no ``except Exception`` may swallow it)."""


class CrashingFs(RealFs):
    def __init__(self, crash_after: int | None = None, *, torn: bool = False) -> None:
        self.crash_after = crash_after
        self.torn = torn
        self.steps: list[str] = []
        self.dead = False
        self.full = False
        self.space = 0  # bytes a full disk still takes before ENOSPC
        self.space_after_short = 0
        self._tearing = False

    def _step(self, what: str, path: PathLike, *, writes: bool = False) -> None:
        if self.dead:
            raise SimulatedCrash(f"dead (after step {len(self.steps)})")
        if self.crash_after is not None and len(self.steps) >= self.crash_after:
            self.dead = True
            if writes and self.torn:
                self._tearing = True  # the write below goes half-way, then we die
                return
            raise SimulatedCrash(f"killed before step {len(self.steps) + 1}: {what} {path}")
        self.steps.append(f"{what} {os.path.basename(str(path))}")

    def _write(self, fd: int, data: bytes | memoryview) -> int:
        if self._tearing:
            self._tearing = False
            os.write(fd, bytes(data[: max(1, len(data) // 2)]))
            raise SimulatedCrash("killed in the middle of a write")
        if self.full:
            if self.space <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = os.write(fd, bytes(data[: self.space]))
            self.space -= n
            if n < len(data):  # a short write; then the disk is full (or has ``space_after_short`` left)
                self.space = self.space_after_short
            return n
        return os.write(fd, data)

    def create(self, path: PathLike, data: bytes, *, fsync: bool = False) -> None:
        self._step("create", path, writes=True)
        super().create(path, data, fsync=fsync)

    def create_locked(self, path: PathLike, data: bytes, *, fsync: bool = False) -> int:
        self._step("create", path, writes=True)
        return super().create_locked(path, data, fsync=fsync)

    def rename(self, src: PathLike, dst: PathLike) -> None:
        self._step("rename", dst)
        super().rename(src, dst)

    def link(self, src: PathLike, dst: PathLike) -> None:
        self._step("link", dst)
        super().link(src, dst)

    def unlink(self, path: PathLike) -> None:
        self._step("unlink", path)
        super().unlink(path)

    def append_fd(self, fd: int, line: bytes, path: PathLike) -> None:
        self._step("append", path, writes=True)
        super().append_fd(fd, line, path)

    def touch(self, path: PathLike) -> None:
        self._step("touch", path)
        if self.full and not os.path.exists(path):
            raise WriteError(errno.ENOSPC, path)
        super().touch(path)

    def mkdir(self, path: PathLike) -> None:
        self._step("mkdir", path)
        if self.full and not os.path.isdir(path):
            raise WriteError(errno.ENOSPC, path)
        super().mkdir(path)

    def rmdir(self, path: PathLike) -> None:
        self._step("rmdir", path)
        super().rmdir(path)

    def utime(self, path: PathLike, t: float) -> None:
        self._step("utime", path)
        super().utime(path, t)
