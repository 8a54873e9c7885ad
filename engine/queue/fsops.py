"""Small filesystem steps the queue is built from, each atomic for readers.

Temp files live in ``tasks/.tmp`` (same filesystem), not in the state directories, so
workers watching queue/ with inotify never see half-written files, and the busy state
directories do not fill with short-lived names.
"""

from __future__ import annotations

import os
from pathlib import Path

_counter = 0


PathLike = str | Path


def _tmp_name(tmp_dir: PathLike, hint: str) -> str:
    global _counter
    _counter += 1
    return f"{tmp_dir}/{hint[:80]}.{os.getpid()}.{_counter}.tmp"


def _write_tmp(tmp_dir: PathLike, hint: str, data: bytes, fsync: bool) -> str:
    tmp = _tmp_name(tmp_dir, hint)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def write_replace(tmp_dir: PathLike, dest: PathLike, data: bytes, *, fsync: bool = False) -> None:
    """Write ``dest`` atomically (replacing any old one)."""
    tmp = _write_tmp(tmp_dir, os.path.basename(dest), data, fsync)
    try:
        os.rename(tmp, dest)
    except BaseException:
        _unlink(tmp)
        raise


def write_exclusive(tmp_dir: PathLike, dest: PathLike, data: bytes, *, fsync: bool = False) -> bool:
    """Write ``dest`` atomically only if it does not exist yet. False if it already did.

    ``link`` fails on an existing name, so two writers can never both succeed: this is how
    a completion is recorded exactly once.
    """
    tmp = _write_tmp(tmp_dir, os.path.basename(dest), data, fsync)
    try:
        os.link(tmp, dest)
        return True
    except FileExistsError:
        return False
    finally:
        _unlink(tmp)


def append_line(path: PathLike, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _unlink(path: PathLike) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


unlink_quiet = _unlink
