"""The two small files between the supervisor and each worker subprocess.

``<id>.status.json``: written by the worker (atomically) on every state change and
heartbeat. ``<id>.control.json``: written by the supervisor; the worker reads it
before each claim (a stat + read of a tiny file) and obeys. Plain files keep the
channel inspectable with ``cat`` and survive either side restarting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_bytes
from engine.schema import SchemaError, from_plain, to_plain


@dataclass(frozen=True)
class WorkerStatus:
    worker_id: str
    pid: int
    gpus: tuple[int, ...]
    state: str  # idle | busy | paused | draining | stopping | hot (thermal hold)
    heartbeat_at: float
    current_task: str | None = None
    task_name: str | None = None
    task_class: str | None = None
    task_started_at: float | None = None
    progress: str | None = None
    tokens_per_s: float | None = None
    residency: str = "idle"  # the GPU state machine's state
    resident_model: str | None = None
    resident_vram_mb: float | None = None
    control_seq: int = 0  # last control seq applied (the supervisor's ack)
    tasks_done: int = 0
    tasks_failed: int = 0
    gpu_degraded: str | None = None  # why the card is degraded (VRAM not freed after an unload), else None


@dataclass(frozen=True)
class WorkerControl:
    seq: int
    mode: str = "run"  # run | pause | drain
    reason: str | None = None
    unload_seq: int = 0  # bump to ask the worker to unload its model now (force-unload)
    thermal_hold: bool = False  # supervisor's thermal guard: take nothing new while True


def write_json_dataclass(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(to_plain(obj)).encode())


def read_status(path: Path) -> WorkerStatus | None:
    try:
        return from_plain(WorkerStatus, json.loads(Path(path).read_bytes()))
    except (FileNotFoundError, ValueError, SchemaError):  # ValueError: bad JSON, and bytes that are not text
        return None


def read_control(path: Path) -> WorkerControl | None:
    try:
        return from_plain(WorkerControl, json.loads(Path(path).read_bytes()))
    except (FileNotFoundError, ValueError, SchemaError):  # ValueError: bad JSON, and bytes that are not text
        return None
