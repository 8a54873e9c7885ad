"""Configuration and helpers for the simulated Ollama: per-model specs with failure
injection, Ollama's ``keep_alive`` parsing, deterministic text, and the VRAM ledger
protocol through which the simulated server tells the simulated rig what it holds."""

from __future__ import annotations

import hashlib
import random
import re
import threading
from dataclasses import dataclass
from typing import Protocol

from engine.telemetry.protocol import GpuProcess, GpuSample, ProbeStatus

FOREVER_S = 10_000_000_000.0  # expires_at for a negative keep_alive (Ollama shows year 2318)
_MB = 1024 * 1024


class VramLedger(Protocol):
    """What the simulated server reports its VRAM to. ``SimulatedRig`` implements it."""

    def allocate(self, gpu_index: int, owner: str, mb: float) -> object: ...

    def free(self, gpu_index: int, owner: str) -> object: ...


@dataclass
class SimModelSpec:
    """One model the simulated server can serve. Times are simulated seconds.

    Failure injection (counters count down as they fire): ``fail_next_loads`` answers the
    next loads with HTTP 500; ``fail_mid_stream`` cuts the next generations half way with an
    error line; ``hang_next_load`` makes the next load stall (until ``hang_max_s`` real
    seconds or ``release_hangs``); ``gpu_fraction`` < 1 is a silent CPU fallback
    (size_vram < size); ``leak_vram_on_unload`` keeps the VRAM allocated after an unload
    (a driver that does not free); ``vram_release_s`` frees it that long after the unload.
    """

    name: str
    size_mb: float = 4700.0
    load_s: float = 90.0  # field notes: Qwen 7B ~1.5-2 min cold start
    warm_load_s: float = 0.002
    tokens_per_s: float = 20.0
    prompt_tokens_per_s: float = 200.0
    family: str = "qwen2"
    parameter_size: str = "7.6B"
    quantization: str = "Q4_K_M"
    fail_next_loads: int = 0
    fail_mid_stream: int = 0
    hang_next_load: int = 0
    hang_max_s: float = 30.0
    gpu_fraction: float = 1.0
    leak_vram_on_unload: bool = False
    vram_release_s: float = 0.0

    @property
    def size_bytes(self) -> int:
        return int(self.size_mb * _MB)


_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def keep_alive_seconds(value: object) -> float:
    """Ollama's keep_alive: a number is seconds, a string a Go duration ("5m", "1h30m");
    negative means forever; 0 means unload right after the request."""
    if isinstance(value, bool):
        raise ValueError(f"keep_alive: invalid value {value!r}")
    if isinstance(value, (int, float)):
        return FOREVER_S if value < 0 else float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"keep_alive: invalid value {value!r}")
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    try:
        seconds = float(body)  # "0", "300": Ollama accepts plain seconds too
    except ValueError:
        pos, seconds = 0, 0.0
        for m in _DURATION_RE.finditer(body):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNIT_S[m.group(2)]
            pos = m.end()
        if pos != len(body) or pos == 0:
            raise ValueError(f"keep_alive: time: invalid duration {value!r}") from None
    return FOREVER_S if sign < 0 and seconds > 0 else seconds


_WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
          "labore et dolore magna aliqua gpu rig model token stream answer quick brown fox jumps over "
          "lazy dog whisper residency queue worker card memory").split()


def lorem_tokens(seed: str, num_predict: object = None) -> tuple[list[str], str]:
    """Deterministic lorem-like tokens for a prompt, and the done_reason ("stop"/"length")."""
    rng = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))
    natural = rng.randint(24, 56)
    words = [rng.choice(_WORDS) for _ in range(natural)]
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
    tokens[-1] += "."
    if isinstance(num_predict, int) and not isinstance(num_predict, bool) and 0 <= num_predict < natural:
        return tokens[:num_predict], "length"
    return tokens, "stop"


class InMemoryVramLedger:
    """A small in-repo VRAM ledger that is also a ``GpuProbe`` (a test double for a rig):
    owners become GPU processes, so residency code sees VRAM come and go."""

    def __init__(self, gpu_count: int = 1, mem_total_mb: float = 6144.0, base_used_mb: float = 80.0) -> None:
        self._lock = threading.Lock()
        self.mem_total_mb = mem_total_mb
        self.base_used_mb = base_used_mb
        self._held: list[dict[str, float]] = [{} for _ in range(gpu_count)]
        self._pids: dict[str, int] = {}

    def allocate(self, gpu_index: int, owner: str, mb: float) -> None:
        with self._lock:
            others = sum(v for o, v in self._held[gpu_index].items() if o != owner)
            if others + mb + self.base_used_mb > self.mem_total_mb:
                raise MemoryError(f"GPU {gpu_index}: {owner} asked for {mb:.0f} MB, "
                                  f"{self.mem_total_mb - others - self.base_used_mb:.0f} MB free")
            self._held[gpu_index][owner] = float(mb)
            self._pids.setdefault(owner, 700_000 + len(self._pids))

    def free(self, gpu_index: int, owner: str) -> float:
        with self._lock:
            return self._held[gpu_index].pop(owner, 0.0)

    def used_by(self, gpu_index: int) -> dict[str, float]:
        with self._lock:
            return dict(self._held[gpu_index])

    # --- GpuProbe ---
    def status(self) -> ProbeStatus:
        return ProbeStatus(available=True, kind="simulated", detail="in-memory VRAM ledger (test double)",
                           driver="simulated", gpu_count=len(self._held))

    def sample(self) -> list[GpuSample]:
        with self._lock:
            return [GpuSample(index=i, name="Simulated GPU (ledger)", simulated=True,
                              mem_used_mb=self.base_used_mb + sum(held.values()), mem_total_mb=self.mem_total_mb,
                              processes=tuple(GpuProcess(pid=self._pids[o], name=o, used_mb=mb)
                                              for o, mb in sorted(held.items())))
                    for i, held in enumerate(self._held)]

    def close(self) -> None:
        """Nothing to release."""


def field_notes_models() -> list[SimModelSpec]:
    """The field notes' rig: Qwen 7B on one 6 GB GTX 1060 (~1.5-2 min cold start), Qwen 14B
    over two cards (~2-2.5 min), VRAM back ~5-10 s after an unload, plus a tiny model for
    quick demos. Token rates are typical of Q4 quantisations on a GTX 1060."""
    return [
        SimModelSpec("qwen2.5:7b", size_mb=4700, load_s=105, tokens_per_s=22, vram_release_s=6),
        SimModelSpec("qwen2.5:14b", size_mb=9000, load_s=135, tokens_per_s=11, parameter_size="14.8B",
                     vram_release_s=8),
        SimModelSpec("smollm2:135m", size_mb=270, load_s=2, tokens_per_s=120, family="llama",
                     parameter_size="135M", quantization="Q8_0"),
    ]
