"""Doubles for worker tests (not a test module): a recording residency and handlers."""

from __future__ import annotations

from pathlib import Path

from engine.handlers.base import HandlerResult, TaskContext, TaskFailure
from engine.model import Task
from engine.residency.machine import GpuState


class RecordingResidency:
    """Residency double: remembers what the worker asked, changes no GPU."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self._state = GpuState.IDLE
        self.model: str | None = "qwen2.5:7b"

    @property
    def state(self) -> GpuState:
        return self._state

    @property
    def resident_model(self) -> str | None:
        return self.model

    def prepare(self, task: Task, ctx: TaskContext) -> None:
        self.calls.append(("prepare", task.task_id))
        self._state = "script_busy"

    def finished(self, task: Task, ok: bool) -> None:
        self.calls.append(("finished", task.task_id))
        self._state = "idle"

    def force_unload(self) -> None:
        self.calls.append(("force_unload", None))
        self.model = None


class NoopHandler:
    """Completes every task at once (queue throughput tests)."""

    resident_model = None

    def run(self, task: Task, ctx: TaskContext) -> HandlerResult:
        return HandlerResult(result={"ok": True, "pid_gpus": ctx.env.get("CUDA_VISIBLE_DEVICES")})

    def release(self) -> None:
        return None


class WaitForFileHandler:
    """Runs until ``params.go`` exists or the worker asks it to stop."""

    resident_model = None

    def __init__(self) -> None:
        self.started: list[str] = []

    def run(self, task: Task, ctx: TaskContext) -> HandlerResult:
        import time

        self.started.append(task.task_id)
        go = Path(task.params["go"])
        while not go.exists():
            if ctx.should_stop():
                raise TaskFailure("stopped before it finished")
            time.sleep(0.01)
        return HandlerResult(result={"ok": True})

    def release(self) -> None:
        return None
