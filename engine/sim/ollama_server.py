"""A simulated Ollama server (a test/sim DOUBLE): a real HTTP server on loopback that speaks
Ollama's documented REST API, so the real ``ollama`` Python client and our OllamaBackend
run against it unchanged. No real Ollama can be installed on the development machines.

Follows docs/api.md of ollama/ollama: POST /api/generate and /api/chat (NDJSON stream when
``stream`` is true or absent, one JSON object when false), an empty prompt (or empty
``messages``) loads the model, ``keep_alive`` 0 unloads it (``done_reason: "unload"``),
durations in nanoseconds, GET /api/ps (size, size_vram, expires_at, digest, details),
GET /api/tags, GET /api/version, POST /api/show; errors are ``{"error": "..."}``.

Simulated time: load times and token rates are the *simulated* figures reported in the
durations; the server really waits only ``time_scale`` times as long, so tests are fast
while tokens/s and load_duration still come out as configured.

VRAM: a loaded model's ``size_vram`` is split evenly over the server's GPU group and
reported to a ``VramLedger`` (the simulated rig) under the owner ``ollama:<port>:<model>``,
which is also the process name the probe shows, so residency code can find it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from http.server import ThreadingHTTPServer
from typing import Any, Self

from engine.clock import Clock, SystemClock
from engine.sim import ollama_wire as wire
from engine.sim.ollama_models import SimModelSpec, VramLedger, keep_alive_seconds, lorem_tokens
from engine.sim.ollama_wire import SIM_VERSION

__all__ = ["SIM_VERSION", "SimulatedOllamaServer"]
_MB = 1024 * 1024


class _Loaded:
    def __init__(self, spec: SimModelSpec, expires_at: float, size_vram: int) -> None:
        self.spec = spec
        self.expires_at = expires_at
        self.size_vram = size_vram
        self.inflight = 0
        self.generation = 0  # bumps on every unload, so streams of an unloaded model stop


class SimulatedOllamaServer:
    """One simulated Ollama instance for one GPU group, on its own loopback port."""

    def __init__(self, models: Sequence[SimModelSpec], gpu_ids: Sequence[int] = (0,), *,
                 ledger: VramLedger | None = None, time_scale: float = 0.001,
                 clock: Clock | None = None, host: str = "127.0.0.1", port: int = 0,
                 max_loaded_models: int = 1, default_keep_alive: str = "5m",
                 reap_interval_s: float = 0.5) -> None:
        self.specs = {m.name: m for m in models}
        self.gpu_ids = tuple(gpu_ids)
        self.ledger = ledger
        self.time_scale = time_scale
        self.clock: Clock = clock or SystemClock()
        self.max_loaded_models = max(1, max_loaded_models)
        self.default_keep_alive = default_keep_alive
        self._lock = threading.RLock()
        self._load_lock = threading.Lock()  # one load at a time, as Ollama's scheduler does
        self._loaded: dict[str, _Loaded] = {}
        self._stop = threading.Event()
        self._hang_release = threading.Event()
        self.requests: deque[tuple[str, dict[str, Any]]] = deque(maxlen=1000)  # (path, body): recent requests
        self._httpd = ThreadingHTTPServer((host, port), wire.make_handler(self))
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []
        self._reap_interval_s = reap_interval_s

    # --- lifecycle ---
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        serve = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                 name=f"sim-ollama-{self.port}", daemon=True)
        reap = threading.Thread(target=self._reap_loop, name=f"sim-ollama-reaper-{self.port}", daemon=True)
        self._threads = [serve, reap]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._hang_release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            for name in list(self._loaded):
                self._evict(name)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test/sim controls ---
    def release_hangs(self) -> None:
        """Let requests stuck in a simulated hang finish (they answer with an error)."""
        self._hang_release.set()

    def loaded_models(self) -> list[str]:
        with self._lock:
            self.expire_idle()
            return sorted(self._loaded)

    def expire_idle(self) -> list[str]:
        """Unload models whose keep_alive ran out and that no request is using."""
        now = self.clock.now()
        with self._lock:
            gone = [n for n, m in self._loaded.items() if m.expires_at <= now and m.inflight == 0]
            for name in gone:
                self._evict(name)
            return gone

    def _reap_loop(self) -> None:
        while not self._stop.wait(self._reap_interval_s):
            self.expire_idle()

    # --- model lifecycle (called from request threads) ---
    def _spec(self, name: str) -> SimModelSpec | None:
        if name in self.specs:
            return self.specs[name]
        if ":" not in name:
            return self.specs.get(f"{name}:latest")
        if name.endswith(":latest"):
            return self.specs.get(name.removesuffix(":latest"))
        return None

    def _ensure_loaded(self, spec: SimModelSpec, keep_alive_s: float) -> tuple[float, _Loaded]:
        """Load if cold; returns (simulated load seconds, the loaded record, in-flight +1)."""
        with self._load_lock:
            with self._lock:
                rec = self._loaded.get(spec.name)
                if rec is not None:
                    rec.inflight += 1
                    return spec.warm_load_s, rec
                while len(self._loaded) >= self.max_loaded_models:
                    victim = min(self._loaded.values(), key=lambda m: m.expires_at)
                    self._evict(victim.spec.name)
            if spec.hang_next_load > 0:
                spec.hang_next_load -= 1
                self._hang_release.wait(spec.hang_max_s)
                raise _SimError(500, f"timed out waiting for llama runner to start: {spec.name} (simulated hang)")
            self._sleep(spec.load_s)
            if spec.fail_next_loads > 0:
                spec.fail_next_loads -= 1
                raise _SimError(500, "llama runner process has terminated: exit status 2 (simulated load failure)")
            size_vram = int(spec.size_bytes * spec.gpu_fraction)
            with self._lock:
                self._allocate(spec, size_vram)
                rec = _Loaded(spec, self.clock.now() + keep_alive_s, size_vram)
                rec.inflight = 1
                self._loaded[spec.name] = rec
            return spec.load_s, rec

    def _allocate(self, spec: SimModelSpec, size_vram: int) -> None:
        if self.ledger is None or size_vram <= 0:
            return
        share_mb = size_vram / _MB / len(self.gpu_ids)
        done: list[int] = []
        try:
            for gpu in self.gpu_ids:
                self.ledger.allocate(gpu, self.owner(spec.name), share_mb)
                done.append(gpu)
        except MemoryError as exc:  # the simulated rig's GpuOutOfMemory, as CUDA would fail
            for gpu in done:
                self.ledger.free(gpu, self.owner(spec.name))
            raise _SimError(500, f"model requires more system memory than is available: {exc}") from None

    def owner(self, model: str) -> str:
        return f"ollama:{self.port}:{model}"

    def _evict(self, name: str) -> None:
        rec = self._loaded.pop(name, None)
        if rec is None:
            return
        rec.generation += 1
        if self.ledger is None or rec.spec.leak_vram_on_unload:
            return
        delay = rec.spec.vram_release_s * self.time_scale
        if delay <= 0:
            self._free(name)
        else:  # real drivers free VRAM a moment after the runner exits
            t = threading.Timer(delay, self._free, args=(name,))
            t.daemon = True
            t.start()

    def _free(self, name: str) -> None:
        with self._lock:
            if name in self._loaded or self.ledger is None:
                return  # reloaded meanwhile: its new allocation stands
            for gpu in self.gpu_ids:
                self.ledger.free(gpu, self.owner(name))

    def _finish(self, rec: _Loaded, keep_alive_s: float) -> None:
        with self._lock:
            rec.inflight = max(0, rec.inflight - 1)
            if self._loaded.get(rec.spec.name) is not rec:
                return
            rec.expires_at = self.clock.now() + keep_alive_s
            if keep_alive_s <= 0 and rec.inflight == 0:
                self._evict(rec.spec.name)

    def _unload(self, name: str) -> None:
        """keep_alive 0 with no prompt: off the card now; running streams are cut off."""
        with self._lock:
            self._evict(name)

    def _sleep(self, simulated_s: float) -> None:
        if simulated_s > 0 and self.time_scale > 0:
            self._stop.wait(simulated_s * self.time_scale)

    # --- request handling ---
    def handle_generate(self, body: dict[str, Any], chat: bool) -> tuple[int, Any]:
        """Returns (status, payload); payload is a dict or an iterator of dicts (NDJSON)."""
        name = body.get("model")
        if not isinstance(name, str) or not name:
            return 400, {"error": "model is required"}
        spec = self._spec(name)
        if spec is None:
            return 404, {"error": f"model '{name}' not found"}
        try:
            keep_alive_s = keep_alive_seconds(body.get("keep_alive", self.default_keep_alive))
        except ValueError as exc:
            return 400, {"error": str(exc)}
        prompt = wire.prompt_of(body, chat)
        if prompt is None:  # load / unload request
            if keep_alive_s == 0:
                self._unload(spec.name)
                return 200, wire.final(spec.name, chat, "unload", {})
            try:
                load_s, rec = self._ensure_loaded(spec, keep_alive_s)
            except _SimError as exc:
                return exc.status, {"error": exc.message}
            self._finish(rec, keep_alive_s)
            stats = {"total_duration": wire.ns(load_s), "load_duration": wire.ns(load_s)}
            return 200, wire.final(spec.name, chat, "load", stats)
        try:
            load_s, rec = self._ensure_loaded(spec, keep_alive_s)
        except _SimError as exc:
            return exc.status, {"error": exc.message}
        options = body.get("options") or {}
        stream = body.get("stream", True) is not False
        chunks = self._generate(spec, rec, prompt, options, load_s, keep_alive_s, chat)
        if stream:
            return 200, chunks
        return wire.collapse(list(chunks), chat)

    def _generate(self, spec: SimModelSpec, rec: _Loaded, prompt: str, options: dict[str, Any],
                  load_s: float, keep_alive_s: float, chat: bool) -> Any:
        generation = rec.generation
        try:
            seed = options.get("seed", 0)
            tokens, reason = lorem_tokens(f"{seed}:{prompt}", options.get("num_predict"))
            prompt_tokens = max(1, len(prompt.split()))
            prompt_s = prompt_tokens / spec.prompt_tokens_per_s
            self._sleep(prompt_s)
            for i, tok in enumerate(tokens):
                if rec.generation != generation or self._stop.is_set():
                    yield {"error": f"model '{spec.name}' was unloaded while generating"}
                    return
                if spec.fail_mid_stream > 0 and i == len(tokens) // 2:
                    spec.fail_mid_stream -= 1
                    yield {"error": "an error was encountered while running the model: simulated failure"}
                    return
                self._sleep(1.0 / spec.tokens_per_s)
                yield wire.chunk(spec.name, chat, tok)
            eval_s = len(tokens) / spec.tokens_per_s
            stats = {"total_duration": wire.ns(load_s + prompt_s + eval_s), "load_duration": wire.ns(load_s),
                     "prompt_eval_count": prompt_tokens, "prompt_eval_duration": wire.ns(prompt_s),
                     "eval_count": len(tokens), "eval_duration": wire.ns(eval_s)}
            last = wire.final(spec.name, chat, reason, stats)
            if not chat:
                last["context"] = [len(prompt) % 997, len(tokens)]
            yield last
        finally:
            self._finish(rec, keep_alive_s)

    def ps(self) -> dict[str, Any]:
        self.expire_idle()
        with self._lock:
            return {"models": [dict(wire.describe(m.spec), expires_at=wire.rfc3339(m.expires_at),
                                    size_vram=m.size_vram) for m in self._loaded.values()]}

    def tags(self) -> dict[str, Any]:
        return {"models": [dict(wire.describe(s), modified_at="2026-01-01T00:00:00Z") for s in self.specs.values()]}

    def show(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        spec = self._spec(str(body.get("model") or body.get("name") or ""))
        if spec is None:
            return 404, {"error": f"model '{body.get('model')}' not found"}
        return 200, {"modelfile": f"FROM {spec.name}\n", "parameters": "", "template": "{{ .Prompt }}",
                     "details": wire.describe(spec)["details"], "model_info": {"general.architecture": spec.family},
                     "capabilities": ["completion"]}


class _SimError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
