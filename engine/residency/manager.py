"""Worker-side residency: drives one GPU group's state machine with real effects.

Before an LLM task the group's Ollama must hold the model (a warm script model is released
first); before a transcribe/embed task the Ollama model is unloaded with ``keep_alive: 0``
and the worker WAITS until the GPU probe shows the VRAM actually freed (Ollama answers
"unload" before the driver has the memory back). A timeout marks the GPU degraded and
raises an alert event. ``load_llm``/``unload_llm`` resource tasks are carried out here, so
the state machine and the VRAM wait live in one place; ``LlmHandler`` reports the figures.

The probe is whatever the worker has: NVML on a rig, ``SnapshotGpuProbe`` in ``--sim``
mode. The decisions (transitions, "is the VRAM back", "is it on the CPU") are pure
functions in ``machine.py`` and ``crosscheck.py``; this class only carries them out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.clock import Clock
from engine.event_types import EventType
from engine.handlers.base import Handler, TaskContext, TaskFailure
from engine.inference.protocol import BackendError, GenerationResult, LlmBackend, LoadedModel
from engine.model import Task, TaskClass, TaskType
from engine.residency.crosscheck import cpu_fallback_findings, is_ollama_process, vram_released
from engine.residency.machine import Event, GpuResidency, GpuState, transition
from engine.telemetry.protocol import GpuProbe, GpuSample

S, E = GpuState, Event
_MB = 1024 * 1024
SCRIPT_TYPES = (TaskType.TRANSCRIBE.value, TaskType.EMBED.value)


@dataclass(frozen=True)
class ResidencyEvent:
    """Something the operator should see: a load, an unload, or an alert (severity
    warning/critical, with a stable ``key`` the supervisor can raise and clear)."""

    event_type: EventType
    message: str
    severity: str = "info"  # info | warning | critical
    key: str | None = None
    gpu_ids: tuple[int, ...] = ()
    model: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[ResidencyEvent], None]


def same_model(a: str | None, b: str | None) -> bool:
    """Ollama's names: "qwen2.5" means "qwen2.5:latest"."""
    if not a or not b:
        return False
    norm = [x if ":" in x else f"{x}:latest" for x in (a, b)]
    return norm[0] == norm[1]


class ResidencyManager:
    def __init__(self, backend: LlmBackend | None,
                 handlers: Mapping[str, Handler] | Callable[[], Mapping[Any, Handler]], probe: GpuProbe | None,
                 clock: Clock, gpu_ids: Sequence[int], vram_free_timeout_s: float = 30.0,
                 events: EventSink | None = None, *, keep_alive: str | int = -1,
                 poll_interval_s: float = 0.25, crosscheck_settle_s: float = 5.0) -> None:
        self.backend = backend
        # A mapping, or a callable giving the handlers built so far (``HandlerRegistry.loaded``),
        # so releasing never imports torch just to find nothing warm.
        self._handlers_src = handlers
        self.probe = probe
        self.clock = clock
        self.gpu_ids = tuple(gpu_ids)
        self.vram_free_timeout_s = vram_free_timeout_s
        self.keep_alive = keep_alive  # -1: we decide when a model leaves the card, not a timer
        self.poll_interval_s = poll_interval_s
        # The probe may lag a load (the snapshot is one supervisor tick old): only after this
        # long does "no Ollama process holds VRAM" count as a CPU fallback.
        self.crosscheck_settle_s = crosscheck_settle_s
        self._loaded_at: float | None = None
        self._events = events or (lambda e: None)
        self._res = GpuResidency()
        self._lock = threading.RLock()
        self._pending_force = False
        self.last_load: GenerationResult | None = None
        self.resident_vram_mb: float | None = None
        self._flagged: set[str] = set()

    @property
    def handlers(self) -> dict[str, Handler]:
        src = self._handlers_src() if callable(self._handlers_src) else self._handlers_src
        return {str(getattr(k, "value", k)): h for k, h in src.items()}

    # --- Residency protocol ---
    @property
    def state(self) -> GpuState:
        return self._res.state

    @property
    def resident_model(self) -> str | None:
        return self._res.model

    @property
    def degraded(self) -> str | None:
        return self._res.degraded

    @property
    def residency(self) -> GpuResidency:
        return self._res

    def prepare(self, task: Task, ctx: TaskContext) -> None:
        if task.type in (TaskType.LOAD_LLM, TaskType.UNLOAD_LLM) and self.backend is None:
            return  # an OpenAI-compatible server: the handler reports what it can
        if task.type is TaskType.LOAD_LLM:
            model = self._model_of(task)
            loaded_now = self._ensure_llm(model)
            ctx.extras["residency_report"] = self._report("load_llm", model, loaded_now)
        elif task.type is TaskType.UNLOAD_LLM:
            freed = self._unload_everything(reason=f"task {task.task_id} (unload_llm)")
            ctx.extras["residency_report"] = {"action": "unload_llm", "unloaded": freed, "state": self.state,
                                              "degraded": self.degraded}
        elif task.task_class is TaskClass.LLM:
            if self.backend is None or task.requires_external:
                return  # a server that manages its own model, or a task that only escalation may answer
            shell_model = task.model or self._res.model
            if task.type is TaskType.SHELL and not shell_model:
                return  # a shell command that talks to the LLM itself and names no model
            model = shell_model if task.type is TaskType.SHELL and shell_model else self._model_of(task)
            loaded_now = self._ensure_llm(model)
            ctx.extras["residency_report"] = self._report("llm", model, loaded_now)
            self._apply(E.TASK_START)
        elif task.task_class is TaskClass.SCRIPT:
            self._ensure_script(task)

    def finished(self, task: Task, ok: bool) -> None:
        with self._lock:
            st = self._res.state
            if st is S.LLM_BUSY:
                self._apply(E.TASK_END)
            elif st is S.SCRIPT_BUSY:
                self._apply(E.TASK_END)
                handler = self.handlers.get(task.type.value)
                live = handler.resident_model if handler is not None else None
                if live:
                    self._res = GpuResidency(S.SCRIPT_READY, live, self._res.degraded)
                else:  # the handler holds nothing (failed load, released): the card is empty
                    self._apply(E.BEGIN_UNLOAD)
                    self._apply(E.VRAM_FREED)
            pending, self._pending_force = self._pending_force, False
        if pending:
            self.force_unload()
        elif self._res.state is S.LLM_READY:
            self.check_cpu_fallback()

    def force_unload(self) -> None:
        """The operator's "get the model off this card": never raises; the outcome is an event."""
        with self._lock:
            st = self._res.state
            if st in (S.BOOTING_LLM, S.BOOTING_SCRIPT, S.SCRIPT_BUSY):
                self._pending_force = True  # done when the load/task in flight ends
                self._emit(EventType.FORCE_UNLOAD_DEFERRED, f"force-unload on gpu {self._where()} waits for the "
                           f"{st.value} step to end")
                return
        try:
            freed = self._unload_everything(reason="operator force-unload")
            self._emit(EventType.FORCE_UNLOAD, f"force-unload on gpu {self._where()}: {', '.join(freed) or 'nothing loaded'}")
        except TaskFailure as exc:
            self._emit(EventType.FORCE_UNLOAD_FAILED, f"force-unload on gpu {self._where()} failed: {exc}", "warning")

    # --- checks ---
    def check_cpu_fallback(self) -> list[str]:
        """Cross-check /api/ps against the probe; alert once per model load. Returns messages."""
        if self.backend is None or self.probe is None:
            return []
        try:
            loaded = self.backend.loaded()
        except BackendError:
            return []
        settled = self._loaded_at is None or self.clock.now() - self._loaded_at >= self.crosscheck_settle_s
        findings = cpu_fallback_findings(loaded, self.probe.sample() if settled else [], self.gpu_ids)
        for f in findings:
            if f.key not in self._flagged:
                self._flagged.add(f.key)
                self._emit(EventType.CPU_FALLBACK, f.message, "warning", key=f.key, model=f.model,
                           size_bytes=f.size_bytes, size_vram_bytes=f.size_vram_bytes)
        return [f.message for f in findings]

    # --- LLM side ---
    def _ensure_llm(self, model: str) -> bool:
        """Make ``model`` resident (state llm_ready). True when it had to be loaded."""
        assert self.backend is not None
        st = self._res.state
        if st in (S.LLM_BUSY, S.BOOTING_LLM, S.BOOTING_SCRIPT, S.SCRIPT_BUSY, S.UNLOADING):
            raise TaskFailure(f"gpu {self._where()} is {st.value}: one task at a time", retryable=True)
        if st is S.LLM_READY:
            if same_model(self._res.model, model) and self._server_has(model):
                return False
            if same_model(self._res.model, model):
                self._apply(E.LLM_LOST)
                self._emit(EventType.LLM_LOST, f"{model} was no longer loaded on gpu {self._where()} "
                           "(keep_alive ran out or the server restarted): reloading", "warning")
            else:
                self._unload_everything(reason=f"switch to {model}")
        if self._res.state is S.SCRIPT_READY:
            self._release_scripts(reason=f"switch to {model}")
        self._check_clean_when_degraded()
        leftovers = self._server_models()
        if any(same_model(m.name, model) for m in leftovers) and len(leftovers) == 1:
            self._apply(E.ADOPT_LLM, model=model)  # a restarted worker finds its model warm
            return False
        if leftovers:
            self._unload_everything(reason=f"switch to {model}")
        self._apply(E.BEGIN_LLM_LOAD, model=model)
        self._emit(EventType.LLM_LOADING, f"loading {model} on gpu {self._where()}", model=model)
        try:
            result = self.backend.load(model, keep_alive=self.keep_alive)
        except BackendError as exc:
            self._apply(E.LOAD_FAILED)
            self._pending_force = False
            self._emit(EventType.LLM_LOAD_FAILED, f"loading {model} on gpu {self._where()} failed: {exc}", "warning",
                       key=f"llm_load_failed:{self._where()}", model=model)
            raise TaskFailure(f"could not load {model}: {exc}", retryable=True) from exc
        self._apply(E.LLM_LOADED)
        self._loaded_at = self.clock.now()
        self.last_load = result
        self._flagged.clear()
        load_s = (result.load_duration_ns or 0) / 1e9
        self._emit(EventType.LLM_LOADED, f"{model} loaded on gpu {self._where()} in {load_s:.1f}s", model=model,
                   load_s=load_s)
        if self._pending_force:
            self._pending_force = False
            self.force_unload()
            raise TaskFailure(f"{model} was force-unloaded by the operator while loading", retryable=True)
        return True

    def _unload_everything(self, reason: str) -> list[str]:
        """Unload every model of this group (Ollama and script handlers); wait for the VRAM."""
        freed: list[str] = []
        if self._res.state in (S.SCRIPT_READY, S.SCRIPT_BUSY) or any(
                h.resident_model for k, h in self.handlers.items() if k in SCRIPT_TYPES):
            freed += self._release_scripts(reason)
        backend = self.backend
        if backend is None:
            return freed  # no LLM server: only script models can be resident
        models = self._server_models()
        if not models and self._res.state in (S.LLM_READY, S.LLM_BUSY):
            models = [LoadedModel(name=self._res.model or "")]
        if not models:
            return freed
        if self._res.state is S.IDLE:
            self._apply(E.ADOPT_LLM, model=models[0].name)
        before = self.probe.sample() if self.probe else []
        expected_mb = sum((m.size_vram_bytes or 0) for m in models) / _MB / max(1, len(self.gpu_ids))
        self._apply(E.BEGIN_UNLOAD)
        self._emit(EventType.LLM_UNLOADING, f"unloading {', '.join(m.name for m in models)} from gpu {self._where()} "
                   f"({reason})")
        started = self.clock.now()
        for m in models:
            try:
                backend.unload(m.name)
            except BackendError as exc:
                self._emit(EventType.LLM_UNLOAD_ERROR, f"unload of {m.name} on gpu {self._where()}: {exc}", "warning")
        self._wait_vram_freed([m.name for m in models], before, expected_mb or None, started)
        self.resident_vram_mb = None
        return freed + [m.name for m in models]

    def _wait_vram_freed(self, models: list[str], before: list[GpuSample], expected_mb: float | None,
                         started: float) -> None:
        deadline = started + self.vram_free_timeout_s
        while True:
            server_clear = not any(any(same_model(m.name, x) for x in models) for m in self._server_models(True))
            now_samples = self.probe.sample() if self.probe else []
            taken_at = getattr(self.probe, "last_taken_at", None)  # a probe that lags says how much
            fresh = taken_at is None or taken_at >= started
            if server_clear and fresh and vram_released(before, now_samples, self.gpu_ids, expected_mb):
                self._apply(E.VRAM_FREED)
                self._emit(EventType.VRAM_FREED, f"gpu {self._where()}: VRAM freed {self.clock.now() - started:.1f}s "
                           "after the unload", wait_s=round(self.clock.now() - started, 3))
                return
            if self.clock.now() >= deadline:
                held = _ollama_mb(now_samples, self.gpu_ids)
                reason = (f"VRAM not freed {self.vram_free_timeout_s:.0f}s after unloading {', '.join(models)}"
                          + (f" (Ollama still holds {held:.0f} MB)" if held else ""))
                self._apply(E.VRAM_TIMEOUT, reason=reason)
                self._emit(EventType.VRAM_NOT_FREED, f"gpu {self._where()} degraded: {reason}", "critical",
                           key=f"vram_not_freed:{self._where()}")
                raise TaskFailure(f"gpu {self._where()} degraded: {reason}", retryable=True)
            self.clock.sleep(self.poll_interval_s)

    def _check_clean_when_degraded(self) -> None:
        """A degraded card gets work again only once the probe shows Ollama's VRAM gone."""
        if not self._res.degraded:
            return
        samples = self.probe.sample() if self.probe else []
        if vram_released(samples, samples, self.gpu_ids, None) and not self._server_models():
            self._emit(EventType.GPU_RECOVERED, f"gpu {self._where()}: VRAM is free again; no longer degraded",
                       key=f"vram_not_freed:{self._where()}")
            self._res = GpuResidency(self._res.state, self._res.model, None)
            return
        raise TaskFailure(f"gpu {self._where()} is degraded: {self._res.degraded}", retryable=True)

    # --- script side ---
    def _ensure_script(self, task: Task) -> None:
        handler = self.handlers.get(task.type.value)
        st = self._res.state
        if st in (S.LLM_BUSY, S.BOOTING_LLM, S.BOOTING_SCRIPT, S.SCRIPT_BUSY, S.UNLOADING):
            raise TaskFailure(f"gpu {self._where()} is {st.value}: one task at a time", retryable=True)
        if st is S.SCRIPT_READY and handler is not None and handler.resident_model:
            # Same kind of work, model warm: go. (The handler swaps its own model in-process if
            # the task asks for another one.) Another kind's warm model leaves the card first.
            self._release_scripts(reason=f"{task.type.value} needs the card", keep=handler, transition=False)
            self._apply(E.TASK_START)
            return
        if st is S.SCRIPT_READY:
            self._release_scripts(reason=f"switch to {task.model or task.type.value}")
        if self._res.state is S.LLM_READY or self._server_models():
            self._unload_everything(reason=f"{task.type.value} task {task.task_id} needs the card")
        self._check_clean_when_degraded()
        self._release_scripts(reason=f"{task.type.value} needs the card", quiet=True)
        self._apply(E.BEGIN_SCRIPT_LOAD, model=task.model or task.type.value)
        # The handler loads its model inside run() (faster-whisper/sentence-transformers have no
        # separate warm-up call in the Handler protocol), so booting ends as the task starts.
        self._apply(E.SCRIPT_LOADED)

    def _release_scripts(self, reason: str, quiet: bool = False, keep: Handler | None = None,
                         transition: bool = True) -> list[str]:
        freed = []
        for kind, h in self.handlers.items():
            if kind in SCRIPT_TYPES and h is not keep and h.resident_model:
                freed.append(h.resident_model)
                h.release()
        if transition and self._res.state in (S.SCRIPT_READY, S.SCRIPT_BUSY):
            self._apply(E.BEGIN_UNLOAD)
            self._apply(E.VRAM_FREED)  # in-process release is synchronous: no driver wait
        if freed and not quiet:
            self._emit(EventType.SCRIPT_RELEASED, f"released {', '.join(freed)} on gpu {self._where()} ({reason})")
        return freed

    # --- helpers ---
    def _apply(self, event: Event, *, model: str | None = None, reason: str | None = None) -> None:
        with self._lock:
            self._res = transition(self._res, event, model=model, reason=reason)

    def _server_models(self, quiet: bool = False) -> list[LoadedModel]:
        if self.backend is None:
            return []
        try:
            return self.backend.loaded()
        except BackendError as exc:
            if not quiet:
                self._emit(EventType.BACKEND_UNREACHABLE, f"{self.backend.name}: {exc}", "warning")
            return []

    def _server_has(self, model: str) -> bool:
        return any(same_model(m.name, model) for m in self._server_models())

    def _model_of(self, task: Task) -> str:
        model = task.model or task.params.get("model")
        if not isinstance(model, str) or not model:
            raise TaskFailure(f"task {task.task_id} ({task.type.value}) names no model", retryable=False)
        return model

    def _report(self, action: str, model: str, loaded_now: bool) -> dict[str, Any]:
        r = self.last_load if loaded_now else None
        info = next((m for m in self._server_models() if same_model(m.name, model)), None)
        if info and info.size_vram_bytes is not None:
            self.resident_vram_mb = info.size_vram_bytes / _MB
        return {"action": action, "model": model, "loaded_now": loaded_now,
                "load_s": (r.load_duration_ns or 0) / 1e9 if r else 0.0, "state": self.state,
                "size_bytes": info.size_bytes if info else None,
                "size_vram_bytes": info.size_vram_bytes if info else None,
                "expires_at": info.expires_at if info else None}

    def _where(self) -> str:
        return ",".join(map(str, self.gpu_ids)) or "-"

    def _emit(self, event_type: EventType, message: str, severity: str = "info", *, key: str | None = None,
              model: str | None = None, **data: Any) -> None:
        self._events(ResidencyEvent(event_type, message, severity, key, self.gpu_ids, model or self._res.model, data))


def _ollama_mb(samples: Sequence[GpuSample], gpu_ids: Sequence[int]) -> float:
    return sum(p.used_mb or 0.0 for s in samples if s.index in gpu_ids for p in s.processes if is_ollama_process(p))
