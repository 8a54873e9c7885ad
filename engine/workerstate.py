"""The two small files between the supervisor and each worker subprocess.

``<id>.status.json``: written by the worker (atomically) on every state change and
heartbeat. ``<id>.control.json``: written by the supervisor; the worker reads it
before each claim (a stat + read of a tiny file) and obeys. Plain files keep the
channel inspectable with ``cat`` and survive either side restarting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from engine.atomic import atomic_write_bytes
from engine.residency.machine import GpuState
from engine.safeio import UnsafeFileError, read_json
from engine.schema import SchemaError, from_plain, to_plain

T = TypeVar("T")

MAX_STATE_FILE_BYTES = 1_000_000  # a status or control file is a few hundred bytes


class WorkerActivity(StrEnum):
    """What a worker says it is doing (its status file's ``state``)."""

    IDLE = "idle"
    BUSY = "busy"
    PAUSED = "paused"  # operator pause: takes nothing new
    HOT = "hot"  # thermal hold: takes nothing new
    STOPPING = "stopping"


class ControlMode(StrEnum):
    """The operator's intent for a worker (its control file's ``mode``)."""

    RUN = "run"
    PAUSE = "pause"
    DRAIN = "drain"


@dataclass(frozen=True)
class WorkerStatus:
    worker_id: str
    pid: int
    gpus: tuple[int, ...]
    state: WorkerActivity
    heartbeat_at: float
    current_task: str | None = None
    task_name: str | None = None
    task_class: str | None = None
    task_started_at: float | None = None
    progress: str | None = None
    tokens_per_s: float | None = None
    residency: GpuState = GpuState.IDLE  # the GPU state machine's state
    resident_model: str | None = None
    resident_vram_mb: float | None = None
    control_seq: int = 0  # last control seq applied (the supervisor's ack)
    tasks_done: int = 0
    tasks_failed: int = 0
    gpu_degraded: str | None = None  # why the card is degraded (VRAM not freed after an unload), else None


@dataclass(frozen=True)
class WorkerControl:
    seq: int
    mode: ControlMode = ControlMode.RUN
    reason: str | None = None
    unload_seq: int = 0  # bump to ask the worker to unload its model now (force-unload)
    thermal_hold: bool = False  # supervisor's thermal guard: take nothing new while True


def write_json_dataclass(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(to_plain(obj)).encode())


def _read(cls: type[T], path: Path) -> T | None:
    """None when missing or bad: the writer replaces the file on its next beat; the bounded
    reader (engine.safeio) keeps a FIFO, link, huge or deep file from blocking or crashing us."""
    try:
        return from_plain(cls, read_json(path, MAX_STATE_FILE_BYTES))
    except (FileNotFoundError, UnsafeFileError, SchemaError):
        return None


def read_status(path: Path) -> WorkerStatus | None:
    return _read(WorkerStatus, path)


def read_control(path: Path) -> WorkerControl | None:
    return _read(WorkerControl, path)
