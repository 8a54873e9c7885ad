"""The Ollama backend: the real ``ollama`` Python client against one Ollama instance (one per
GPU group, each on its own host:port, as the field notes run them).

Streaming generate, so partial output reaches the dashboard while a task runs; the final
chunk's statistics (nanoseconds) give tokens/s = eval_count / eval_duration x 1e9, with the
cold-load time (load_duration) kept apart. Load is an empty-prompt generate, unload a
generate with keep_alive 0 (Ollama answers done_reason "unload"). The same code runs
against a rig's real Ollama and against ``engine.sim.SimulatedOllamaServer``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import ollama

from engine.inference.protocol import BackendError, BackendTimeout, ChunkCallback, GenerationResult, Health, LoadedModel

DEFAULT_TIMEOUT_S = 300.0  # longest wait for the next byte (a cold load of a 14B model takes ~2.5 min)
ClientFactory = Callable[..., Any]


class OllamaBackend:
    """An ``LlmBackend`` for one Ollama server. ``client_factory`` builds ``ollama.Client``
    (keyword ``host`` and ``timeout``); tests pass the real one against the simulated server."""

    def __init__(self, host: str, client_factory: ClientFactory = ollama.Client,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.host = host.rstrip("/")
        self.name = f"ollama@{self.host.split('://', 1)[-1]}"
        self._factory = client_factory
        self._timeout_s = timeout_s
        self._clients: dict[float, Any] = {}

    def _client(self, timeout_s: float | None) -> Any:
        """One client per timeout bucket: building a client (an httpx pool, TLS context) costs
        tens of ms, so a task's remaining time is rounded up to a power of two seconds."""
        t = self._timeout_s
        if timeout_s is not None and 0 < timeout_s < t:
            t = float(2 ** math.ceil(math.log2(max(timeout_s, 1.0))))
        if t not in self._clients:
            self._clients[t] = self._factory(host=self.host, timeout=t)
        return self._clients[t]

    # --- LlmBackend ---
    def generate(self, model: str, prompt: str, *, system: str | None = None,
                 options: dict[str, object] | None = None, keep_alive: str | int | None = None,
                 on_chunk: ChunkCallback | None = None, timeout_s: float | None = None) -> GenerationResult:
        parts: list[str] = []
        final: Any = None
        with _mapped_errors(self.name, model, timeout_s or self._timeout_s):
            stream = self._client(timeout_s).generate(model=model, prompt=prompt, system=system, options=options,
                                                      keep_alive=keep_alive, stream=True)
            try:
                for chunk in stream:
                    text = chunk.get("response") or ""
                    if text:
                        parts.append(text)
                        if on_chunk is not None:
                            on_chunk(text)
                    if chunk.get("done"):
                        final = chunk
            finally:
                close = getattr(stream, "close", None)
                if close is not None:  # a caller that stopped early closes the HTTP stream now
                    close()
        if final is None:
            raise BackendError(f"{self.name}: stream for {model} ended without a final chunk")
        return _result(model, "".join(parts), final)

    def load(self, model: str, keep_alive: str | int | None = None) -> GenerationResult:
        with _mapped_errors(self.name, model, self._timeout_s):
            final = self._client(None).generate(model=model, prompt="", keep_alive=keep_alive, stream=False)
        return _result(model, "", final)

    def unload(self, model: str) -> None:
        with _mapped_errors(self.name, model, self._timeout_s):
            final = self._client(None).generate(model=model, prompt="", keep_alive=0, stream=False)
        reason = final.get("done_reason")
        if reason not in ("unload", None):
            raise BackendError(f"{self.name}: unload of {model} answered done_reason {reason!r}, not 'unload'")

    def loaded(self) -> list[LoadedModel]:
        with _mapped_errors(self.name, None, self._timeout_s):
            resp = self._client(None).ps()
        out = []
        for m in resp.get("models") or []:
            expires = m.get("expires_at")
            out.append(LoadedModel(name=str(m.get("model") or m.get("name")),
                                   size_bytes=_int_or_none(m.get("size")),
                                   size_vram_bytes=_int_or_none(m.get("size_vram")),
                                   expires_at=expires.isoformat() if hasattr(expires, "isoformat") else expires))
        return out

    def health(self) -> Health:
        """GET /api/version; the latency is the round trip of that call."""
        started = time.perf_counter()
        try:
            resp = httpx.get(f"{self.host}/api/version", timeout=5.0)
            latency_ms = (time.perf_counter() - started) * 1000
            resp.raise_for_status()
            version = resp.json().get("version", "?")
        except (httpx.HTTPError, ValueError) as exc:
            return Health(ok=False, latency_ms=None, detail=f"{self.name}: {type(exc).__name__}: {exc}")
        return Health(ok=True, latency_ms=latency_ms, detail=f"{self.name}: ollama {version}")


class _mapped_errors:
    """ollama.ResponseError / httpx errors -> BackendError / BackendTimeout, naming the server."""

    def __init__(self, name: str, model: str | None, timeout_s: float) -> None:
        self.where = f"{name}" + (f" ({model})" if model else "")
        self.timeout_s = timeout_s

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        """Turns the client's errors into BackendError/BackendTimeout; anything else passes through."""
        if exc is None:
            return
        if isinstance(exc, httpx.TimeoutException):
            raise BackendTimeout(
                f"{self.where}: no answer within {self.timeout_s:.0f}s ({type(exc).__name__})") from exc
        if isinstance(exc, ollama.ResponseError):
            raise BackendError(f"{self.where}: {exc.error} (HTTP {exc.status_code})") from exc
        if isinstance(exc, httpx.HTTPError):
            raise BackendError(f"{self.where}: {type(exc).__name__}: {exc}") from exc
        if isinstance(exc, ConnectionError):  # the client wraps a refused connection in ConnectionError
            raise BackendError(f"{self.where}: cannot connect: {exc}") from exc


def _int_or_none(v: object) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _result(model: str, text: str, final: Any) -> GenerationResult:
    if not text:
        text = final.get("response") or ""
    return GenerationResult(
        text=text, model=str(final.get("model") or model), done_reason=final.get("done_reason"),
        eval_count=_int_or_none(final.get("eval_count")),
        eval_duration_ns=_int_or_none(final.get("eval_duration")),
        prompt_eval_count=_int_or_none(final.get("prompt_eval_count")),
        prompt_eval_duration_ns=_int_or_none(final.get("prompt_eval_duration")),
        load_duration_ns=_int_or_none(final.get("load_duration")),
        total_duration_ns=_int_or_none(final.get("total_duration")))
