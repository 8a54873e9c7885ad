"""The rig's recent history: per-GPU series and tokens/s per model, kept by the supervisor.

Why a file of its own (``state/history.json``) and not the snapshot: the snapshot is
written several times a second and read by every dashboard on each change, so it stays
small; the history covers the last ``span_s`` (15 minutes by default) at one sample every
few seconds and is written every few seconds. A dashboard attached later reads it and sees
the same curves as one that watched from the start. ``None`` in a series means "n/a" at
that sample (the card did not report it, or the model was not running).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_bytes
from engine.safeio import UnsafeFileError, read_json
from engine.schema import SchemaError, from_plain, to_plain_dict

HISTORY_VERSION = 1
HISTORY_MAX_BYTES = 4 * 1024 * 1024  # far above 16 GPUs x 15 min; a bigger file is not ours

Series = tuple[float | None, ...]


@dataclass(frozen=True)
class GpuSeries:
    index: int
    name: str
    mem_total_mb: float | None = None
    power_limit_w: float | None = None
    util_pct: Series = ()
    mem_used_mb: Series = ()
    temp_c: Series = ()
    power_w: Series = ()


@dataclass(frozen=True)
class ModelSeries:
    """Tokens/s the rig's workers produced with one model at each sample (summed over workers)."""

    model: str
    tokens_per_s: Series = ()


@dataclass(frozen=True)
class RigHistory:
    version: int
    taken_at: float
    interval_s: float
    times: tuple[float, ...] = ()  # sample times; every series below is aligned with it
    gpus: tuple[GpuSeries, ...] = ()
    models: tuple[ModelSeries, ...] = ()
    supervisor_pid: int | None = None

    def gpu(self, index: int) -> GpuSeries | None:
        return next((g for g in self.gpus if g.index == index), None)

    def to_dict(self) -> dict[str, Any]:
        return to_plain_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RigHistory:
        if not isinstance(data, dict):
            raise SchemaError("history must be a JSON object")
        version = data.get("version")
        if version != HISTORY_VERSION:
            raise SchemaError(f"history version {version!r} is not {HISTORY_VERSION}")
        return from_plain(cls, data)


def encode_history(history: RigHistory) -> bytes:
    return json.dumps(history.to_dict(), separators=(",", ":")).encode()


def write_history(path: Path, history: RigHistory) -> None:
    atomic_write_bytes(path, encode_history(history))


def read_history(path: Path) -> RigHistory | None:
    """None when no supervisor wrote one yet; SchemaError (naming the file) when it is not a history.
    Read through the bounded reader (``engine.safeio``): never blocks on a FIFO, follows no link."""
    try:
        data = read_json(path, HISTORY_MAX_BYTES)
    except FileNotFoundError:
        return None
    except UnsafeFileError as exc:
        raise SchemaError(str(exc)) from None
    try:
        return RigHistory.from_dict(data)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None
