"""Pure checks of what Ollama says against what the GPU probe sees.

Two questions, both functions of data so they are tested without a GPU:
- ``vram_released``: after ``keep_alive: 0``, is the VRAM really back? Ollama answers
  "unload" before the runner process has exited and the driver has freed the memory.
- ``cpu_fallback_findings``: is a "loaded" model silently running (partly) on the CPU?
  Ollama's /api/ps ``size_vram`` below ``size`` says so, and so does a probe that lists
  the card's processes but shows none of Ollama's holding memory.

Ollama's processes are recognised by name: ``ollama``/``ollama_llama_server``/``ollama
runner`` on a real rig (NVML reports the runner's executable), ``ollama:<port>:<model>``
for the simulated server's ledger owners.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.inference.protocol import LoadedModel
from engine.telemetry.nvml import NOT_VISIBLE
from engine.telemetry.protocol import GpuProcess, GpuSample

HELD_THRESHOLD_MB = 64.0  # an Ollama process holding less than this is the driver's residue, not a model
FREED_FRACTION = 0.8  # without per-process data: used memory must drop by 80% of the model's share
CPU_FALLBACK_TOLERANCE = 0.02  # size_vram may be a hair under size from rounding


def is_ollama_process(p: GpuProcess) -> bool:
    return "ollama" in p.name.lower()


def _by_index(samples: Sequence[GpuSample]) -> dict[int, GpuSample]:
    return {s.index: s for s in samples}


def vram_released(before: Sequence[GpuSample], now: Sequence[GpuSample], gpu_ids: Sequence[int],
                  expected_mb_per_gpu: float | None) -> bool:
    """True when every GPU of the group shows the model's VRAM gone.

    Per-process data decides when there is any (no Ollama process holding memory);
    otherwise used memory must have dropped by most of the model's share; with neither
    (a probe that reports nothing), there is nothing to wait for and the answer is True.
    """
    b, n = _by_index(before), _by_index(now)
    for gpu in gpu_ids:
        cur = n.get(gpu)
        if cur is None:
            continue
        ollama_now = [p for p in cur.processes if is_ollama_process(p)]
        if any(p.used_mb is not None and p.used_mb > HELD_THRESHOLD_MB for p in ollama_now):
            return False
        if ollama_now and all(p.used_mb is None for p in ollama_now):
            if not _dropped(b.get(gpu), cur, expected_mb_per_gpu):
                return False  # listed but unmeasured (some consumer cards): fall back to totals
            continue
        prev = b.get(gpu)
        saw_process_before = prev is not None and any(is_ollama_process(p) for p in prev.processes)
        if not ollama_now and not saw_process_before and not _dropped(prev, cur, expected_mb_per_gpu):
            return False  # no per-process data at all: totals decide
    return True


def _dropped(prev: GpuSample | None, cur: GpuSample, expected_mb: float | None) -> bool:
    if prev is None or prev.mem_used_mb is None or cur.mem_used_mb is None or not expected_mb:
        return True  # nothing measurable to wait for
    if prev.mem_used_mb < FREED_FRACTION * expected_mb:
        return True  # the baseline never showed the model (a probe that lags): nothing to compare
    return cur.mem_used_mb <= prev.mem_used_mb - FREED_FRACTION * expected_mb


@dataclass(frozen=True)
class CpuFallback:
    model: str
    gpu_ids: tuple[int, ...]
    size_bytes: int | None
    size_vram_bytes: int | None
    message: str

    @property
    def key(self) -> str:
        return f"cpu_fallback:{','.join(map(str, self.gpu_ids))}:{self.model}"


def _gb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e9:.1f} GB"


def cpu_fallback_findings(loaded: Sequence[LoadedModel], samples: Sequence[GpuSample],
                          gpu_ids: Sequence[int]) -> list[CpuFallback]:
    """One finding per loaded model that runs (partly) on the CPU."""
    gpus = tuple(gpu_ids)
    where = "gpu " + ",".join(map(str, gpus)) if gpus else "no gpu"
    out: list[CpuFallback] = []
    by_index = _by_index(samples)
    group = [by_index[g] for g in gpus if g in by_index]
    # A process whose name this machine cannot see (galaxy and Ollama in separate containers)
    # may well be Ollama: then the listing cannot say "no Ollama process holds VRAM".
    lists_processes = any(s.processes for s in group) and not any(
        p.name.endswith(NOT_VISIBLE) for s in group for p in s.processes)
    ollama_mb = [p.used_mb for s in group for p in s.processes if is_ollama_process(p)]
    for m in loaded:
        if m.size_bytes and m.size_vram_bytes is not None and \
                m.size_vram_bytes < m.size_bytes * (1 - CPU_FALLBACK_TOLERANCE):
            msg = (f"model {m.name} on {where} runs partly on CPU "
                   f"(size_vram {_gb(m.size_vram_bytes)} of {_gb(m.size_bytes)})")
            out.append(CpuFallback(m.name, gpus, m.size_bytes, m.size_vram_bytes, msg))
        elif lists_processes and m.size_vram_bytes and not any(mb is None or mb > HELD_THRESHOLD_MB
                                                               for mb in ollama_mb):
            msg = (f"model {m.name} on {where}: Ollama reports size_vram {_gb(m.size_vram_bytes)} "
                   "but the probe sees no VRAM held by an Ollama process (runs on CPU?)")
            out.append(CpuFallback(m.name, gpus, m.size_bytes, m.size_vram_bytes, msg))
    return out
