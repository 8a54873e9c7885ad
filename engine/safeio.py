"""The one bounded reader for files that others can write (queue, commands, state, plans, config).

Why: such a file may be a FIFO (``open`` would block), a symlink to ``/dev/zero`` or out
of the root (``fstat`` says 0 bytes for both), 50 MB, not UTF-8, or JSON nested 100,000
deep (RecursionError). Every one of those is a *bad file*, never a crash: the reader
raises ``UnsafeFileError`` (a ``ValueError``) naming the path, and each caller turns it
into its own validation error and moves the file aside once.

The rules: open with ``O_NOFOLLOW | O_NONBLOCK`` (a symlink is refused, a FIFO opens at
once); ``fstat`` must say a regular file; read at most ``limit + 1`` bytes (so a file
whose size ``fstat`` misreports is still caught); strict UTF-8; JSON parsed with
RecursionError/ValueError turned into ``UnsafeFileError``; nesting deeper than
``max_depth`` refused, so no later recursive code (encoders, schema conversion) can blow up.
``FileNotFoundError`` passes through: a file that vanished is a race, not a bad file.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_JSON_DEPTH = 64
"""Deeper JSON is refused: our own records nest a few levels; 64 leaves room for task params."""

_REFUSED_ERRNOS = frozenset({errno.ELOOP, errno.EACCES, errno.EPERM, errno.ENXIO, errno.ENODEV, errno.EISDIR,
                             errno.EINVAL, errno.EOVERFLOW, errno.EFBIG, errno.ENOTDIR, errno.EOPNOTSUPP})
"""open/read errors that say "this is not a file we can read" (ELOOP: a symlink under
O_NOFOLLOW; ENXIO: a socket). Anything else (EMFILE, EIO) is transient and propagates."""


class UnsafeFileError(ValueError):
    """A file that is not a readable regular file of sane size and shape. ``reason`` has no path."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "not a regular file"


def is_symlink(path: str | Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def open_regular(path: str | Path, limit: int, *, follow_symlinks: bool = False) -> int:
    """A read-only descriptor on the regular file ``path`` of at most ``limit`` bytes (by ``fstat``).

    For readers that hand the descriptor on (a decoder) instead of reading it whole: what they
    read is the file checked here, never a FIFO or device swapped in at the path since.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(path, "is a symlink; only regular files are read") from None
        if exc.errno in _REFUSED_ERRNOS:
            raise UnsafeFileError(path, f"cannot be opened: {exc.strerror or exc}") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(path, f"is {_kind(st.st_mode)}; only regular files are read")
        if st.st_size > limit:
            raise UnsafeFileError(path, f"is {st.st_size:,} bytes, over the {limit:,}-byte limit")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str | Path, limit: int, *, follow_symlinks: bool = False) -> bytes:
    """At most ``limit`` bytes of the regular file ``path``; anything else is refused.

    ``follow_symlinks`` is only for a path the operator named (a plan, galaxy.toml): what the
    link points at must still be a regular file. Files in the shared root never follow one.
    """
    fd = open_regular(path, limit, follow_symlinks=follow_symlinks)
    try:
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            try:
                chunk = os.read(fd, limit + 1 - got)
            except OSError as exc:
                if exc.errno in _REFUSED_ERRNOS:
                    raise UnsafeFileError(path, f"cannot be read: {exc.strerror or exc}") from None
                raise
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise UnsafeFileError(path, f"is over the {limit:,}-byte limit")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_tail(path: str | Path, max_bytes: int, *, follow_symlinks: bool = False) -> bytes:
    """The last ``max_bytes`` (at most) of the regular file ``path``, whatever its size: for logs."""
    fd = open_regular(path, 1 << 62, follow_symlinks=follow_symlinks)
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, max_bytes, max(0, size - max_bytes))
    finally:
        os.close(fd)


def decode_utf8(path: str | Path, raw: bytes) -> str:
    """Strict UTF-8 (a leading BOM is dropped); the error names the line of the bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UnsafeFileError(path, f"line {line}: not UTF-8 text (byte {exc.start})") from None


def read_text(path: str | Path, limit: int, *, follow_symlinks: bool = False) -> str:
    return decode_utf8(path, read_bytes(path, limit, follow_symlinks=follow_symlinks))


def check_depth(path: str | Path, data: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse containers nested deeper than ``max_depth`` (iterative: no recursion here)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise UnsafeFileError(path, f"nested more than {max_depth} levels deep")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def parse_json(path: str | Path, raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from strict UTF-8 text; every way it can fail is an ``UnsafeFileError``."""
    text = decode_utf8(path, raw) if isinstance(raw, bytes) else raw
    try:
        data = json.loads(text)
    except RecursionError:
        raise UnsafeFileError(path, "not valid JSON: nested too deep") from None
    except ValueError as exc:  # JSONDecodeError, and numbers too long to convert
        raise UnsafeFileError(path, f"not valid JSON: {exc}") from None
    if text.count("[") + text.count("{") > max_depth:  # only then can it be too deep: skip the walk
        check_depth(path, data, max_depth)
    return data


def read_json(path: str | Path, limit: int, max_depth: int = MAX_JSON_DEPTH, *,
              follow_symlinks: bool = False) -> Any:
    """The bounded reader's usual entry: a regular file, at most ``limit`` bytes, UTF-8 JSON."""
    return parse_json(path, read_bytes(path, limit, follow_symlinks=follow_symlinks), max_depth)


class RefusedLogError(OSError):
    """A log path that is not a regular file (a planted symlink, FIFO, device): nothing is
    written there. An ``OSError`` so every writer's existing "the disk refused" path counts it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(errno.EPERM, reason, str(path))
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.filename}: {self.reason}"


def open_append(path: str | Path) -> int:
    """A descriptor appending to the log ``path`` (created if absent), never through a symlink.

    Why: a symlink planted at a log path would redirect our lines to any file we may write,
    and a FIFO would block the writer in ``open`` (or in ``write`` once its pipe is full).
    ``O_NOFOLLOW`` refuses the link, ``O_NONBLOCK`` makes a FIFO without reader fail at once
    (ENXIO) and one with a reader open at once, and ``fstat`` must then say a regular file.
    Raises ``RefusedLogError`` naming the path; other OSErrors (ENOSPC, EACCES) pass through.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RefusedLogError(path, "is a symlink; logs are appended only to regular files") from None
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EISDIR, errno.EOPNOTSUPP):
            raise RefusedLogError(path, f"is not a regular file ({exc.strerror or exc}); nothing appended") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise RefusedLogError(path, f"is {_kind(mode)}; logs are appended only to regular files")
    return fd


def append_bytes(path: str | Path, data: bytes) -> None:
    """Append ``data`` with one ``write`` through ``open_append`` (a short write is an ENOSPC)."""
    fd = open_append(path)
    try:
        if os.write(fd, data) < len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    finally:
        os.close(fd)


def ensure_real_dir(path: str | Path) -> None:
    """Create the folder ``path`` if needed; it must be a real folder, not a link to one elsewhere.

    For the folders bad files are moved into (``rejected/``): a link planted there would move
    the file, and the reason written beside it, out of the root. Raises ``OSError`` (ENOTDIR)."""
    os.makedirs(path, exist_ok=True)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise OSError(errno.ENOTDIR, "is a symlink, not a real folder; nothing is moved there", str(path))


def excerpt(path: str | Path, chars: int) -> str | None:
    """The first ``chars`` bytes as text, only from a regular file (never a FIFO, device or
    symlink: ``O_NOFOLLOW``); None when it is anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, chars).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)

