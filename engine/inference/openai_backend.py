"""An OpenAI-compatible inference endpoint (vLLM, llama.cpp's server, llama_cpp.server).

The "inference endpoint separate from cognition" of the field notes (seed 003): the
server owns the GPU and its model; galaxy only talks HTTP to it. So, unlike Ollama:

- the server loads its model when it starts and keeps it; ``load``/``unload`` cannot
  move VRAM and say so (``supports_unload`` is False for residency to see);
- a freshly started server refuses connections or answers 503 "loading" for a while,
  so ``health()`` allows a start period (like a compose healthcheck's start_period)
  during which not answering means ``starting``, not failed;
- OpenAI streams report token counts (``usage``, when the server honours
  ``stream_options.include_usage``) but no timings, so durations are measured here
  from the stream itself (see ``_StreamTimer``). llama.cpp's own server adds a
  ``timings`` object, which is used when present.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from engine.clock import Clock, SystemClock
from engine.inference.protocol import BackendError, BackendTimeout, ChunkCallback, GenerationResult, Health, LoadedModel

log = logging.getLogger(__name__)

DEFAULT_START_PERIOD_S = 120.0  # seed 003: vLLM's compose healthcheck uses start_period 120s
_OLLAMA_TO_OPENAI = {"num_predict": "max_tokens"}
_PASSED_OPTIONS = {"temperature", "top_p", "top_k", "min_p", "seed", "stop", "max_tokens",
                   "presence_penalty", "frequency_penalty", "repeat_penalty"}


@dataclass
class _StreamTimer:
    """Generation timings measured from the stream, in the shape Ollama reports them.

    The first content chunk arrives when the prompt has been processed and one token
    sampled; the following n-1 chunks each take one decode step. So the mean step,
    (last - first) / (n - 1), is the per-token time; eval covers n steps and the
    prompt phase is what remains of the time to the first chunk.
    """

    started_ns: int = field(default_factory=time.perf_counter_ns)
    first_ns: int | None = None
    last_ns: int | None = None
    chunks: int = 0

    def content_chunk(self) -> None:
        now = time.perf_counter_ns()
        if self.first_ns is None:
            self.first_ns = now
        self.last_ns = now
        self.chunks += 1

    def durations(self, tokens: int) -> tuple[int | None, int | None]:
        """(prompt_eval_duration_ns, eval_duration_ns) for ``tokens`` generated tokens."""
        if self.first_ns is None or self.last_ns is None or tokens <= 0:
            return None, None
        to_first = self.first_ns - self.started_ns
        if tokens == 1 or self.last_ns == self.first_ns:
            return to_first, None  # one step: no rate can be measured
        step = (self.last_ns - self.first_ns) / (tokens - 1)
        return max(0, int(to_first - step)), int(step * tokens)


class OpenAICompatBackend:
    """``LlmBackend`` over an OpenAI-compatible HTTP API, with SSE streaming."""

    supports_unload = False  # the server, not galaxy, decides what is resident

    def __init__(self, base_url: str, *, api_key: str | None = None,
                 start_period_s: float = DEFAULT_START_PERIOD_S, started_at: float | None = None,
                 clock: Clock | None = None, connect_timeout_s: float = 5.0, stall_timeout_s: float = 120.0,
                 expected_model: str | None = None, transport: httpx.BaseTransport | None = None) -> None:
        self._base = base_url.rstrip("/")
        if self._base.endswith("/v1"):  # OpenAI clients take ".../v1"; /health lives at the root
            self._base = self._base[:-3]
        parts = urlsplit(self._base)
        self.name = f"openai@{parts.netloc or self._base}"
        self._clock = clock or SystemClock()
        self.start_period_s = start_period_s
        self.started_at = started_at if started_at is not None else self._clock.now()
        self._stall_timeout_s = stall_timeout_s
        self.expected_model = expected_model
        """When set, healthy also means /v1/models lists it (a server up with the wrong or
        no model is not ready: seed 003's "stronger health signal")."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self._base, headers=headers, transport=transport,
                                  timeout=httpx.Timeout(stall_timeout_s, connect=connect_timeout_s))

    # ---- lifecycle ----
    def mark_started(self, now: float | None = None) -> None:
        """The server was (re)started: a new start period begins."""
        self.started_at = self._clock.now() if now is None else now

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- LlmBackend ----
    def generate(self, model: str, prompt: str, *, system: str | None = None,
                 options: dict[str, object] | None = None, keep_alive: str | int | None = None,
                 on_chunk: ChunkCallback | None = None, timeout_s: float | None = None) -> GenerationResult:
        """Stream a chat completion. ``keep_alive`` has no meaning here and is ignored."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                                "stream_options": {"include_usage": True}, **_openai_options(options)}
        deadline = time.monotonic() + timeout_s if timeout_s else None
        timeout = httpx.Timeout(min(timeout_s or self._stall_timeout_s, self._stall_timeout_s),
                                connect=self._http.timeout.connect)
        timer = _StreamTimer()
        text: list[str] = []
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        finish: str | None = None
        served_model = model
        try:
            with self._http.stream("POST", "/v1/chat/completions", json=body, timeout=timeout) as resp:
                if resp.status_code != 200:
                    raise BackendError(f"{self.name}: HTTP {resp.status_code} from /v1/chat/completions: "
                                       f"{resp.read().decode(errors='replace')[:300]}")
                for event in _sse_events(resp.iter_lines()):
                    if deadline is not None and time.monotonic() > deadline:
                        raise BackendTimeout(f"{self.name}: generation passed its {timeout_s}s timeout")
                    if "error" in event:
                        raise BackendError(f"{self.name}: server error mid-stream: {event['error']}")
                    served_model = event.get("model") or served_model
                    usage = event.get("usage") or usage
                    timings = event.get("timings") or timings
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            timer.content_chunk()
                            text.append(piece)
                            if on_chunk is not None:
                                on_chunk(piece)
                        finish = choice.get("finish_reason") or finish
        except httpx.TimeoutException as exc:
            raise BackendTimeout(f"{self.name}: no answer within the timeout ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        total_ns = time.perf_counter_ns() - timer.started_ns
        return _result("".join(text), served_model, finish, usage, timings, timer, total_ns)

    def load(self, model: str, keep_alive: str | int | None = None) -> GenerationResult:
        """A no-op: the server loaded its model at start. Says so in ``done_reason``."""
        log.info("%s: load(%s) is a no-op; the server manages its own model", self.name, model)
        return GenerationResult(text="", model=model, done_reason="noop: server-managed model")

    def unload(self, model: str) -> None:
        """A no-op: an OpenAI-compatible server cannot be told to free VRAM."""
        log.info("%s: unload(%s) is a no-op; stop the server to free its VRAM", self.name, model)

    def loaded(self) -> list[LoadedModel]:
        try:
            resp = self._http.get("/v1/models")
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.name}: GET /v1/models failed: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise BackendError(f"{self.name}: GET /v1/models answered HTTP {resp.status_code}")
        try:
            data = resp.json().get("data") or []
            return [LoadedModel(name=str(m["id"])) for m in data if isinstance(m, dict) and "id" in m]
        except (ValueError, AttributeError) as exc:
            raise BackendError(f"{self.name}: /v1/models is not an OpenAI model list: {exc}") from exc

    def health(self) -> Health:
        """/health (vLLM, llama.cpp) or, where there is none (llama_cpp.server), /v1/models."""
        in_start = self._clock.now() - self.started_at < self.start_period_s
        started = time.perf_counter()
        try:
            resp = self._http.get("/health", timeout=5.0)
            if resp.status_code == 404:
                resp = self._http.get("/v1/models", timeout=5.0)
        except httpx.HTTPError as exc:
            reason = f"not answering ({type(exc).__name__})"
            if in_start:
                return Health(False, None, f"{reason}; within the {self.start_period_s:.0f}s start period",
                              starting=True)
            return Health(False, None, reason)
        latency_ms = (time.perf_counter() - started) * 1000
        if resp.status_code == 200:
            if self.expected_model:
                return self._model_listed(latency_ms, in_start)
            return Health(True, latency_ms, f"ok ({resp.request.url.path})")
        body = resp.text[:200]
        if resp.status_code == 503 and "load" in body.lower():
            if in_start:
                return Health(False, latency_ms, "loading model (503)", starting=True)
            return Health(False, latency_ms, f"still loading after the {self.start_period_s:.0f}s start period")
        return Health(False, latency_ms, f"HTTP {resp.status_code} from {resp.request.url.path}: {body}")

    def _model_listed(self, latency_ms: float, in_start: bool) -> Health:
        try:
            names = [m.name for m in self.loaded()]
        except BackendError as exc:
            return Health(False, latency_ms, f"up, but the model list failed: {exc}", starting=in_start)
        want = self.expected_model or ""
        if any(n == want or n.rsplit("/", 1)[-1] == want for n in names):
            return Health(True, latency_ms, f"ok, serving {want}")
        return Health(False, latency_ms, f"up, but {want!r} is not among its models {names}", starting=in_start)


def _openai_options(options: dict[str, object] | None) -> dict[str, object]:
    """Ollama-style options to OpenAI request fields; Ollama-only ones (num_ctx...) dropped."""
    out: dict[str, object] = {}
    for key, value in (options or {}).items():
        key = _OLLAMA_TO_OPENAI.get(key, key)
        if key in _PASSED_OPTIONS:
            out[key] = value
        else:
            log.debug("option %s has no OpenAI equivalent; ignored", key)
    return out


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """JSON payloads of an SSE stream's ``data:`` lines, up to ``data: [DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, comments (": ping"), event:/id: fields
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise BackendError(f"malformed SSE data line: {payload[:120]!r} ({exc.msg})") from None
        if isinstance(event, dict):
            yield event


def _result(text: str, model: str, finish: str | None, usage: dict[str, Any], timings: dict[str, Any],
            timer: _StreamTimer, total_ns: int) -> GenerationResult:
    if timings.get("predicted_ms") is not None:  # llama.cpp's server measured it itself
        return GenerationResult(
            text=text, model=model, done_reason=finish,
            eval_count=_int(timings.get("predicted_n")) or _int(usage.get("completion_tokens")),
            eval_duration_ns=int(float(timings["predicted_ms"]) * 1e6),
            prompt_eval_count=_int(timings.get("prompt_n")) or _int(usage.get("prompt_tokens")),
            prompt_eval_duration_ns=int(float(timings.get("prompt_ms") or 0) * 1e6) or None,
            total_duration_ns=total_ns)
    # Without usage (a server ignoring include_usage) each content chunk counts as a token:
    # llama.cpp and vLLM send one token per chunk when streaming.
    eval_count = _int(usage.get("completion_tokens")) or timer.chunks or None
    prompt_ns, eval_ns = timer.durations(eval_count or 0)
    return GenerationResult(text=text, model=model, done_reason=finish, eval_count=eval_count,
                            eval_duration_ns=eval_ns, prompt_eval_count=_int(usage.get("prompt_tokens")),
                            prompt_eval_duration_ns=prompt_ns, total_duration_ns=total_ns)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
