"""The field notes' GPU state machine as a pure transition function.

    idle -> booting_llm -> llm_ready <-> llm_busy
    idle -> booting_script -> script_busy <-> script_ready
    llm_ready / llm_busy / script_ready -> unloading -> idle   (unload waits for VRAM freed)

``script_ready`` is the one state the notes do not name: our script handlers keep their
whisper/embedding model warm between tasks (the notes' scripts were processes that exited),
and the dashboard must tell a warm card from a busy one. ``llm_busy -> unloading`` is the
operator's force-unload. Illegal transitions raise ``IllegalTransition``: a bug in the
caller, never silently absorbed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class GpuState(StrEnum):
    IDLE = "idle"
    BOOTING_LLM = "booting_llm"
    LLM_READY = "llm_ready"
    LLM_BUSY = "llm_busy"
    BOOTING_SCRIPT = "booting_script"
    SCRIPT_BUSY = "script_busy"
    SCRIPT_READY = "script_ready"
    UNLOADING = "unloading"


class Event(StrEnum):
    BEGIN_LLM_LOAD = "begin_llm_load"
    LLM_LOADED = "llm_loaded"
    LOAD_FAILED = "load_failed"
    ADOPT_LLM = "adopt_llm"  # the server already holds the model (a worker restart)
    LLM_LOST = "llm_lost"  # the server dropped it behind our back (keep_alive ran out, crash)
    TASK_START = "task_start"
    TASK_END = "task_end"
    BEGIN_SCRIPT_LOAD = "begin_script_load"
    SCRIPT_LOADED = "script_loaded"
    BEGIN_UNLOAD = "begin_unload"
    VRAM_FREED = "vram_freed"
    VRAM_TIMEOUT = "vram_timeout"


class IllegalTransition(RuntimeError):
    def __init__(self, state: GpuState, event: Event) -> None:
        super().__init__(f"residency: event {event.value!r} is not allowed in state {state.value!r}")
        self.state = state
        self.event = event


S, E = GpuState, Event
TRANSITIONS: dict[tuple[GpuState, Event], GpuState] = {
    (S.IDLE, E.BEGIN_LLM_LOAD): S.BOOTING_LLM,
    (S.IDLE, E.ADOPT_LLM): S.LLM_READY,
    (S.BOOTING_LLM, E.LLM_LOADED): S.LLM_READY,
    (S.BOOTING_LLM, E.LOAD_FAILED): S.IDLE,
    (S.LLM_READY, E.TASK_START): S.LLM_BUSY,
    (S.LLM_BUSY, E.TASK_END): S.LLM_READY,
    (S.LLM_READY, E.LLM_LOST): S.IDLE,
    (S.LLM_READY, E.BEGIN_UNLOAD): S.UNLOADING,
    (S.LLM_BUSY, E.BEGIN_UNLOAD): S.UNLOADING,
    (S.IDLE, E.BEGIN_SCRIPT_LOAD): S.BOOTING_SCRIPT,
    (S.BOOTING_SCRIPT, E.SCRIPT_LOADED): S.SCRIPT_BUSY,
    (S.BOOTING_SCRIPT, E.LOAD_FAILED): S.IDLE,
    (S.SCRIPT_READY, E.TASK_START): S.SCRIPT_BUSY,
    (S.SCRIPT_BUSY, E.TASK_END): S.SCRIPT_READY,
    (S.SCRIPT_READY, E.BEGIN_UNLOAD): S.UNLOADING,
    (S.SCRIPT_BUSY, E.BEGIN_UNLOAD): S.UNLOADING,
    (S.UNLOADING, E.VRAM_FREED): S.IDLE,
    (S.UNLOADING, E.VRAM_TIMEOUT): S.IDLE,
}


@dataclass(frozen=True)
class GpuResidency:
    """One GPU group's residency: the state, the model it holds, and why it is degraded."""

    state: GpuState = GpuState.IDLE
    model: str | None = None
    degraded: str | None = None


def transition(current: GpuResidency, event: Event, *, model: str | None = None,
               reason: str | None = None) -> GpuResidency:
    """The next residency. ``model`` names the model for load/adopt events; ``reason`` is
    the degradation reason for VRAM_TIMEOUT. Raises IllegalTransition."""
    nxt = TRANSITIONS.get((current.state, event))
    if nxt is None:
        raise IllegalTransition(current.state, event)
    if event in (E.BEGIN_LLM_LOAD, E.ADOPT_LLM, E.BEGIN_SCRIPT_LOAD):
        if not model:
            raise ValueError(f"residency: event {event.value!r} needs the model name")
        return replace(current, state=nxt, model=model)
    if event is E.VRAM_TIMEOUT:
        return GpuResidency(state=nxt, model=None, degraded=reason or "VRAM not freed after unload")
    if event is E.VRAM_FREED:  # the card proved itself clean: no longer degraded
        return GpuResidency(state=nxt, model=None, degraded=None)
    if nxt is S.IDLE:
        return GpuResidency(state=nxt, model=None, degraded=current.degraded)
    return replace(current, state=nxt)
