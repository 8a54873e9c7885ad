"""What the worker loop needs from a task handler (shell, llm, transcribe, embed).

Handlers live in the worker subprocess and may keep a model warm between tasks; the
worker asks them to let go of it (``release``) when the residency plan says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.model import Task


class TaskFailure(Exception):
    """A task failed. ``retryable`` False means a definition error: retrying cannot help."""

    def __init__(self, message: str, *, retryable: bool = True, return_code: int | None = None,
                 output_tail: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.return_code = return_code
        self.output_tail = output_tail


@dataclass
class TaskContext:
    """Everything a handler may touch besides the task itself."""

    worker_id: str
    gpu_ids: tuple[int, ...]
    env: dict[str, str]  # the worker's environment, CUDA_VISIBLE_DEVICES already set
    workdir: str
    deadline: float  # epoch seconds; handlers stop and raise TaskFailure when passed
    report_progress: Callable[[str | None, float | None], None] = lambda text, tokens_per_s: None
    """Partial output / progress line and live tokens/s, shown on the dashboard."""
    should_stop: Callable[[], bool] = lambda: False
    """True when the task was cancelled or the worker must hand it back."""
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the LLM backend for this GPU group
    on_process_group: Callable[[int, str], None] = lambda pgid, out_path: None
    """(pgid, temp output path): called by a handler that starts a process group, after the group
    exists and before the task's command runs. The worker records it (engine.taskgroups) so the
    group is killed if the worker dies; raising OSError means the command must not run."""


@dataclass(frozen=True)
class HandlerResult:
    result: dict[str, Any]  # stored as the task's result (JSON-safe)
    output_tail: str = ""
    tokens_generated: int | None = None
    tokens_per_s: float | None = None
    model: str | None = None  # model that served it (resident after the task)


class Handler(Protocol):
    def run(self, task: Task, ctx: TaskContext) -> HandlerResult: ...

    @property
    def resident_model(self) -> str | None:
        """The model this handler keeps warm on the GPU now, if any."""
        ...

    def release(self) -> None:
        """Free the warm model (its VRAM) now."""
        ...
