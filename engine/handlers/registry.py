"""Task type -> handler, resolved lazily and kept for the worker's lifetime.

Lazy: a shell-only worker never imports faster-whisper or torch. Kept: a handler holds
its warm model between tasks. A type with no importable handler is a definition error
for this worker (non-retryable), not a crash.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from engine.handlers.base import Handler, TaskFailure
from engine.model import TaskType

DEFAULT_HANDLERS: dict[TaskType, str] = {
    TaskType.SHELL: "engine.handlers.shell:ShellHandler",
    TaskType.LLM: "engine.handlers.llm:LlmHandler",
    TaskType.LOAD_LLM: "engine.handlers.llm:LlmHandler",
    TaskType.UNLOAD_LLM: "engine.handlers.llm:LlmHandler",
    TaskType.TRANSCRIBE: "engine.handlers.transcribe:TranscribeHandler",
    TaskType.EMBED: "engine.handlers.embed:EmbedHandler",
}


def load_object(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class HandlerRegistry:
    """``get(type)`` returns the one handler instance for that type (one per class spec)."""

    def __init__(self, specs: Mapping[TaskType, str] | None = None, *,
                 instances: Mapping[TaskType, Handler] | None = None,
                 factory_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
                 allowed: set[TaskType] | None = None) -> None:
        self.specs = dict(DEFAULT_HANDLERS if specs is None else specs)
        self._by_type: dict[TaskType, Handler] = dict(instances or {})
        self._by_spec: dict[str, Handler] = {}
        self._factory_kwargs = dict(factory_kwargs or {})
        self._allowed = allowed
        self.errors: dict[TaskType, str] = {}

    def get(self, task_type: TaskType) -> Handler:
        if task_type in self._by_type:
            return self._by_type[task_type]
        if self._allowed is not None and task_type not in self._allowed:
            raise TaskFailure(f"no handler for type {task_type.value} on this worker", retryable=False)
        spec = self.specs.get(task_type)
        if spec is None:
            raise TaskFailure(f"no handler for type {task_type.value} on this worker", retryable=False)
        if spec not in self._by_spec:
            try:
                factory: Callable[..., Handler] = load_object(spec)
                self._by_spec[spec] = factory(**self._factory_kwargs.get(spec, {}))
            except Exception as exc:  # noqa: BLE001 - missing module, missing runtime, bad config
                self.errors[task_type] = f"{type(exc).__name__}: {exc}"
                raise TaskFailure(f"no handler for type {task_type.value} on this worker "
                                  f"({spec}: {type(exc).__name__}: {exc})", retryable=False) from None
        handler = self._by_spec[spec]
        self._by_type[task_type] = handler
        return handler

    def loaded(self) -> dict[TaskType, Handler]:
        """Handlers constructed so far (e.g. for the residency manager to release)."""
        return dict(self._by_type)
