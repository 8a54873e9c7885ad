"""Which script tasks (transcribe, embed) a worker can run: the handler's library and the model.

A worker offered a transcribe task it has no faster-whisper for, or whose model it cannot
find on disk, fails it at once (not retryable) and takes its dependents down. So claims ask
``ScriptSupport.why_not(kind, model)`` first: the handler's library must be importable
(found with ``importlib.util.find_spec``, nothing imported) and the model must resolve the
way the handler will resolve it (engine.handlers.models, offline: the group's ``models``
table, an existing folder, or a packaged default). Answers are cached, a "no" only for
``recheck_s`` so a model installed later is noticed without a restart; claims never open
task files for this, only the name's type and model.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine.model import TaskType

HANDLER_LIBRARIES: dict[TaskType, str] = {
    TaskType.TRANSCRIBE: "faster_whisper",
    TaskType.EMBED: "sentence_transformers",
}
"""The library each script handler imports when it loads its model (engine/handlers/)."""

RECHECK_S = 30.0


def library_present(module: str) -> bool:
    """Whether ``module`` can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve_offline(kind: TaskType, model: str | None, models: Mapping[str, str]) -> str | None:
    """None when the handler would find ``model`` (or its default) on disk; else why not."""
    from engine.handlers.base import TaskFailure
    from engine.handlers.models import requested_model_name, resolve_model

    try:
        resolve_model(kind.value, requested_model_name(kind.value, {}, model, models), models)
    except TaskFailure as exc:
        return str(exc)
    return None


@dataclass
class ScriptSupport:
    """One worker's script abilities, from its group's ``models`` table and this host's libraries."""

    models: Mapping[str, str] = field(default_factory=dict)
    has_library: Callable[[str], bool] = library_present
    resolve: Callable[[TaskType, str | None, Mapping[str, str]], str | None] = resolve_offline
    clock: Callable[[], float] = time.monotonic
    recheck_s: float = RECHECK_S
    _seen: dict[tuple[TaskType, str | None], tuple[str | None, float]] = field(default_factory=dict, repr=False)

    def why_not(self, kind: TaskType, model: str | None) -> str | None:
        """None when this worker can run a ``kind`` task for ``model``; else why not (short)."""
        if kind not in HANDLER_LIBRARIES:
            return None
        key = (kind, model)
        now = self.clock()
        hit = self._seen.get(key)
        if hit is not None and (hit[0] is None or now - hit[1] < self.recheck_s):
            return hit[0]
        library = HANDLER_LIBRARIES[kind]
        why = (f"has no {kind.value} handler ({library} is not installed)" if not self.has_library(library)
               else self._model_reason(kind, model))
        self._seen[key] = (why, now)
        return why

    def _model_reason(self, kind: TaskType, model: str | None) -> str | None:
        why = self.resolve(kind, model, self.models)
        if why is None:
            return None
        return f"cannot resolve {kind.value} model {model or '(default)'}: {why}"


_SHARED: dict[tuple[tuple[str, str], ...], ScriptSupport] = {}


def support_for(models: Mapping[str, str]) -> ScriptSupport:
    """One ScriptSupport per ``models`` table in this process, so its cache outlives a tick."""
    key = tuple(sorted(models.items()))
    if key not in _SHARED:
        _SHARED[key] = ScriptSupport(dict(models))
    return _SHARED[key]
