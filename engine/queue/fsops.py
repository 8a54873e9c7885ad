"""The filesystem steps the queue is built from: one layer, so a test can stop after any step.

Every change the queue makes to the disk (create a temp file, rename, link, unlink, append a
line, touch a marker) is one call on an ``FsOps``. ``RealFs`` does it; a test double
(tests/doubles/crash_fs.py) counts the calls and can die after step k, or answer ENOSPC,
so the crash-injection suite enumerates every intermediate state (docs/queue.md, Guarantees).

Temp files live in ``tasks/.tmp`` (same filesystem), not in the state directories, so
workers watching queue/ with inotify never see half-written files. A write that fails
raises ``WriteError`` ("no space left writing PATH"), after removing its partial temp file.
An appended line is whole or absent: a short write is closed with a newline so the next
line starts clean, and readers skip the fragment (engine.events, engine.queue.ledger).
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Protocol

from engine import safeio

PathLike = str | Path

_counter = 0


class WriteError(OSError):
    """A write the queue needed did not happen; the message names the file."""

    def __init__(self, err: int, path: PathLike) -> None:
        super().__init__(err, os.strerror(err), str(path))

    def __str__(self) -> str:
        what = "no space left" if self.errno in (errno.ENOSPC, errno.EDQUOT) else (self.strerror or "error").lower()
        return f"{what} writing {self.filename}"


def as_write_error(exc: OSError, path: PathLike) -> WriteError:
    return exc if isinstance(exc, WriteError) else WriteError(exc.errno or errno.EIO, path)


class FsOps(Protocol):
    """The queue's write steps. Reads (listdir, stat, open for reading) are not steps."""

    def create(self, path: PathLike, data: bytes, *, fsync: bool = False) -> None: ...
    def create_locked(self, path: PathLike, data: bytes, *, fsync: bool = False) -> int: ...
    def rename(self, src: PathLike, dst: PathLike) -> None: ...
    def link(self, src: PathLike, dst: PathLike) -> None: ...
    def unlink(self, path: PathLike) -> None: ...
    def append_fd(self, fd: int, line: bytes, path: PathLike) -> None: ...
    def touch(self, path: PathLike) -> None: ...
    def mkdir(self, path: PathLike) -> None: ...
    def rmdir(self, path: PathLike) -> None: ...
    def utime(self, path: PathLike, t: float) -> None: ...
    def write_replace(self, tmp_dir: PathLike, dest: PathLike, data: bytes, *, fsync: bool = False) -> None: ...
    def write_exclusive(self, tmp_dir: PathLike, dest: PathLike, data: bytes, *, fsync: bool = False) -> bool: ...
    def append_line(self, path: PathLike, line: bytes) -> None: ...


def tmp_name(tmp_dir: PathLike, hint: str, suffix: str = "tmp") -> str:
    global _counter
    _counter += 1
    return f"{tmp_dir}/{hint[:80]}.{os.getpid()}.{_counter}.{suffix}"


class RealFs:
    """The real thing. Subclasses (test doubles) override the primitive steps only."""

    # ---- primitive steps ----
    def _write(self, fd: int, data: bytes | memoryview) -> int:
        return os.write(fd, data)

    def create(self, path: PathLike, data: bytes, *, fsync: bool = False) -> None:
        """A new file with all of ``data``; a partial one is removed before the error is raised."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = self._write(fd, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
            if fsync:
                os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            _unlink(path)
            raise as_write_error(exc, path) from None
        os.close(fd)

    def create_locked(self, path: PathLike, data: bytes, *, fsync: bool = False) -> int:
        """A new file, ``flock``-ed before anything is written to it; returns the open
        descriptor (the lock lasts until it is closed, or the process dies)."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:
                n = self._write(fd, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
            if fsync:
                os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            _unlink(path)
            raise as_write_error(exc, path) from None
        except BaseException:
            os.close(fd)  # as a dying process would: the lock goes, the file stays
            raise
        return fd

    def rename(self, src: PathLike, dst: PathLike) -> None:
        os.rename(src, dst)

    def link(self, src: PathLike, dst: PathLike) -> None:
        os.link(src, dst)

    def unlink(self, path: PathLike) -> None:
        _unlink(path)

    def append_fd(self, fd: int, line: bytes, path: PathLike) -> None:
        """One ``write`` on an O_APPEND descriptor (never a second one: it could land after
        another process's line). A short write is closed with a newline and reported."""
        try:
            n = self._write(fd, line)
        except OSError as exc:
            raise as_write_error(exc, path) from None
        if n < len(line):
            try:
                self._write(fd, b"\n")
            except OSError:
                pass  # readers also split a fragment glued to the next line (events, ledger)
            raise WriteError(errno.ENOSPC, path)

    def touch(self, path: PathLike) -> None:
        try:
            # a marker: never created through a planted link (out of the root), never blocked by a FIFO
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644))
        except OSError as exc:
            raise as_write_error(exc, path) from None

    def mkdir(self, path: PathLike) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise as_write_error(exc, path) from None

    def rmdir(self, path: PathLike) -> None:
        try:
            os.rmdir(path)
        except OSError:
            pass

    def utime(self, path: PathLike, t: float) -> None:
        """Set a lease (mtime); never through a symlink."""
        os.utime(path, (t, t), follow_symlinks=False)

    # ---- composites (made of the steps above) ----
    def write_replace(self, tmp_dir: PathLike, dest: PathLike, data: bytes, *, fsync: bool = False) -> None:
        """Write ``dest`` atomically (replacing any old one)."""
        tmp = tmp_name(tmp_dir, os.path.basename(dest))
        self.create(tmp, data, fsync=fsync)
        try:
            self.rename(tmp, dest)
        except OSError:
            self.unlink(tmp)
            raise

    def write_exclusive(self, tmp_dir: PathLike, dest: PathLike, data: bytes, *, fsync: bool = False) -> bool:
        """Write ``dest`` atomically only if it does not exist yet. False if it already did.

        ``link`` fails on an existing name, so two writers can never both succeed: this is how
        a completion is recorded exactly once.
        """
        tmp = tmp_name(tmp_dir, os.path.basename(dest))
        self.create(tmp, data, fsync=fsync)
        try:
            self.link(tmp, dest)
            return True
        except FileExistsError:
            return False
        finally:
            self.unlink(tmp)

    def append_line(self, path: PathLike, line: bytes) -> None:
        try:
            fd = safeio.open_append(path)  # never through a symlink or into a FIFO planted at the path
        except OSError as exc:
            raise as_write_error(exc, path) from None
        try:
            self.append_fd(fd, line, path)
        finally:
            os.close(fd)


REAL_FS = RealFs()


def _unlink(path: PathLike) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


unlink_quiet = _unlink


def write_replace(tmp_dir: PathLike, dest: PathLike, data: bytes, *, fsync: bool = False) -> None:
    REAL_FS.write_replace(tmp_dir, dest, data, fsync=fsync)


def write_exclusive(tmp_dir: PathLike, dest: PathLike, data: bytes, *, fsync: bool = False) -> bool:
    return REAL_FS.write_exclusive(tmp_dir, dest, data, fsync=fsync)


def append_line(path: PathLike, line: bytes) -> None:
    REAL_FS.append_line(path, line)
