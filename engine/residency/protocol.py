"""Worker-side residency: what the worker loop asks of the GPU state machine.

The worker calls ``prepare`` before every task (switch the card to what the task needs:
unload the Ollama model and wait for VRAM to be freed before a whisper job, reload an
LLM later), ``finished`` after it, and ``force_unload`` when the operator asks.
``NullResidency`` is for CPU workers and the foundation's shell-only worker.
"""

from __future__ import annotations

from typing import Protocol

from engine.handlers.base import TaskContext
from engine.model import Task
from engine.residency.machine import GpuState


class Residency(Protocol):
    @property
    def state(self) -> GpuState: ...

    @property
    def resident_model(self) -> str | None: ...

    def prepare(self, task: Task, ctx: TaskContext) -> None:
        """Make the card ready for ``task``; raise handlers.base.TaskFailure if it cannot."""
        ...

    def finished(self, task: Task, ok: bool) -> None: ...

    def force_unload(self) -> None: ...


class NullResidency:
    """No models to manage: shell/cpu work only."""

    def __init__(self) -> None:
        self._state = GpuState.IDLE

    @property
    def state(self) -> GpuState:
        return self._state

    @property
    def resident_model(self) -> str | None:
        return None

    def prepare(self, task: Task, ctx: TaskContext) -> None:
        if task.task_class.value in ("script", "cpu"):
            self._state = GpuState.SCRIPT_BUSY

    def finished(self, task: Task, ok: bool) -> None:
        self._state = GpuState.IDLE

    def force_unload(self) -> None:
        self._state = GpuState.IDLE
