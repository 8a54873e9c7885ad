"""The one model a script handler keeps warm between tasks (whisper, an embedder).

Loaded on the first task, kept while tasks keep coming, let go when residency asks
(``release``) so the card can take an LLM again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from engine.clock import Clock, SystemClock
from engine.handlers.models import ResolvedModel, free_accelerator_memory

log = logging.getLogger(__name__)


class WarmModelHandler:
    kind = "model"  # for log lines: "whisper", "embedding"

    def __init__(self, clock: Clock | None, cuda_device_count: Callable[[], int]) -> None:
        self._clock = clock or SystemClock()
        self._cuda_device_count = cuda_device_count
        self._model: Any = None
        self._loaded: tuple[Any, ...] | None = None  # (ResolvedModel, device, ...)

    @property
    def resident_model(self) -> str | None:
        if not self._loaded:
            return None
        model: ResolvedModel = self._loaded[0]
        return model.name

    @property
    def device(self) -> str | None:
        return str(self._loaded[1]) if self._loaded else None

    def release(self) -> None:
        if self._model is None:
            return
        log.info("releasing %s model %s", self.kind, self.resident_model)
        self._model = None
        self._loaded = None
        free_accelerator_memory()
