"""Atomic file writes: temp file in the same directory, optional fsync, os.replace.

A reader sees the old file or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = False) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, obj: Any, *, fsync: bool = False, indent: int | None = None) -> None:
    data = json.dumps(obj, indent=indent, sort_keys=False, default=str).encode()
    atomic_write_bytes(path, data + b"\n", fsync=fsync)
