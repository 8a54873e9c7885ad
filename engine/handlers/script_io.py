"""Small pieces the script handlers (transcribe, embed) share: where input files are,
where results go, and when to stop."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.clock import Clock
from engine.handlers.base import TaskContext, TaskFailure


def workdir_path(raw: object, ctx: TaskContext, field: str) -> Path:
    """A path from the task's params; relative paths are taken from the worker's workdir."""
    if not isinstance(raw, str) or not raw.strip():
        raise TaskFailure(f"params.{field} must be a file path (a non-empty string), got {raw!r}", retryable=False)
    path = Path(raw.strip()).expanduser()
    if not path.is_absolute():
        path = Path(ctx.workdir) / path
    return path


def readable_file(raw: object, ctx: TaskContext, field: str, what: str) -> Path:
    """An input file that exists and can be read, else a non-retryable failure naming it."""
    path = workdir_path(raw, ctx, field)
    if not path.exists():
        raise TaskFailure(f"{what} file not found: {path} (params.{field})", retryable=False)
    if not path.is_file():
        raise TaskFailure(f"{what} path is not a file: {path} (params.{field})", retryable=False)
    if not os.access(path, os.R_OK):
        raise TaskFailure(f"{what} file is not readable: {path} (params.{field})", retryable=False)
    return path


def output_path(params: Mapping[str, Any], ctx: TaskContext, suffixes: tuple[str, ...]) -> Path | None:
    """Where to write the task's output file (its folder is created), or None if not asked."""
    raw = params.get("output")
    if raw is None:
        return None
    path = workdir_path(raw, ctx, "output")
    if suffixes and path.suffix.lower() not in suffixes:
        raise TaskFailure(
            f"params.output {str(path)!r} must end in {' or '.join(suffixes)}", retryable=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskFailure(f"cannot create the output folder {path.parent}: {exc}", retryable=False) from None
    return path


def positive_int(params: Mapping[str, Any], field: str, default: int) -> int:
    value = params.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TaskFailure(f"params.{field} must be a positive integer, got {value!r}", retryable=False)
    return value


def check_continue(ctx: TaskContext, clock: Clock, what: str) -> None:
    """Between units of work: stop when the task is cancelled or past its deadline."""
    if ctx.should_stop():
        raise TaskFailure(f"{what} stopped: the task was cancelled or handed back", retryable=True)
    if ctx.deadline and clock.now() > ctx.deadline:
        raise TaskFailure(f"{what} ran past its deadline", retryable=True)
