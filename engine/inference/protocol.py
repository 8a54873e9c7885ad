"""One protocol for every LLM backend: Ollama, OpenAI-compatible servers (vLLM,
llama.cpp), the simulated Ollama, and cloud providers behind escalation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class BackendError(RuntimeError):
    """The backend failed (connection refused, HTTP error, bad response)."""


class BackendTimeout(BackendError):
    """No answer (or the stream stalled) within the timeout."""


@dataclass(frozen=True)
class GenerationResult:
    text: str
    model: str
    done_reason: str | None = None
    eval_count: int | None = None  # generated tokens
    eval_duration_ns: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration_ns: int | None = None
    load_duration_ns: int | None = None  # cold-load time, kept apart from generation
    total_duration_ns: int | None = None

    @property
    def tokens_per_s(self) -> float | None:
        if not self.eval_count or not self.eval_duration_ns:
            return None
        return self.eval_count / self.eval_duration_ns * 1e9


@dataclass(frozen=True)
class LoadedModel:
    name: str
    size_bytes: int | None = None
    size_vram_bytes: int | None = None  # Ollama /api/ps; less than size => partly on CPU
    expires_at: str | None = None


@dataclass(frozen=True)
class Health:
    ok: bool
    latency_ms: float | None
    detail: str
    starting: bool = False  # within the start period: loading, not failed


ChunkCallback = Callable[[str], None]


class LlmBackend(Protocol):
    name: str  # "ollama@127.0.0.1:11435"

    def generate(self, model: str, prompt: str, *, system: str | None = None,
                 options: dict[str, object] | None = None, keep_alive: str | int | None = None,
                 on_chunk: ChunkCallback | None = None, timeout_s: float | None = None) -> GenerationResult:
        """Stream a completion; ``on_chunk`` sees partial text as it arrives."""
        ...

    def load(self, model: str, keep_alive: str | int | None = None) -> GenerationResult:
        """Make the model resident (an empty generate); load_duration_ns says how long it took."""
        ...

    def unload(self, model: str) -> None:
        """Free its VRAM (Ollama: keep_alive 0). Returns when the server says it unloaded."""
        ...

    def loaded(self) -> list[LoadedModel]: ...

    def health(self) -> Health: ...
