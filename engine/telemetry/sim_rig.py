"""A simulated rig: GPUs with a first-order power and thermal model, behind ``GpuProbe``.

Why: the supervisor, thermal guard, residency and dashboard must be exercised on machines
without a GPU. The default rig follows the field notes: 5 x GTX 1060 6GB, GPUs 0 and 3
higher-binned (182 W board maximum, run cooler), GPUs 1 and 2 run hot (76-78 C sustained),
every card capped at a 140 W power limit, and the card throttles itself near 83 C.

The model, per GPU, integrated exactly between samples (piecewise-constant power):
  demand  = idle_w + util * (max_power_w - idle_w)          (W)
  power   = min(demand, power_limit_w, thermal_cap_w when throttling)
  temp   -> ambient + c_per_w * power, time constant tau_s  (first order)
Near ``throttle_c`` the card holds power at the level whose steady temperature is
``throttle_c`` ("sw_thermal"), so temperature plateaus there instead of climbing on.

Every sample says ``simulated=True`` and names end in "(simulated)". Time comes from an
injected Clock. All public methods are thread-safe: simulated Ollama servers run in threads.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from engine.clock import Clock, SystemClock
from engine.telemetry.protocol import GpuProcess, GpuSample, ProbeStatus

SIM_SUFFIX = " (simulated)"
GTX_1060 = "NVIDIA GeForce GTX 1060 6GB"
HW_SLOWDOWN_C = 99.0  # field notes: "Slowdown: 99C (clocks reduce)"
_MAX_STEP_S = 5.0  # integration sub-step, so throttling switches on/off at the right time


class GpuOutOfMemory(MemoryError):
    """An allocation that would exceed the simulated card's VRAM (a real CUDA OOM)."""


@dataclass(frozen=True)
class SimGpuSpec:
    """One simulated card. Defaults are a GTX 1060 6GB at the rig's 140 W limit."""

    name: str = GTX_1060
    mem_total_mb: float = 6144.0
    max_power_w: float = 140.0  # board maximum (what full load would draw uncapped)
    power_limit_w: float = 140.0  # enforced limit (nvidia-smi -pl)
    idle_power_w: float = 5.0  # notes: "Model loaded but idle: ~4-5W per GPU"
    c_per_w: float = 0.30  # thermal resistance to ambient, degrees C per watt
    tau_s: float = 90.0  # heatsink time constant
    throttle_c: float = 83.0  # notes: "Target: 83C (GPU auto-throttles to stay below)"
    idle_sm_mhz: float = 139.0
    boost_sm_mhz: float = 1835.0
    idle_mem_mhz: float = 405.0
    mem_mhz: float = 4004.0


def default_gpu_specs(count: int = 5) -> list[SimGpuSpec]:
    """The field-notes rig, extended to ``count`` cards (extra cards are standard ones)."""
    binned = SimGpuSpec(max_power_w=182.0, c_per_w=0.25)  # 140 W sustained -> ~65 C
    hot = SimGpuSpec(c_per_w=0.335)  # 140 W sustained -> ~77 C at 30 C ambient
    standard = SimGpuSpec(c_per_w=0.30)  # ~72 C
    by_index = {0: binned, 3: binned, 1: hot, 2: hot}
    return [by_index.get(i, standard) for i in range(count)]


def specs_from_sim_config(sim: object) -> list[SimGpuSpec]:
    """Cards for galaxy.toml's ``[sim]`` table (engine.config.SimConfig: gpus, gpu_name,
    vram_mb, power_limit_w), keeping the field-notes pattern of binned and hot cards.
    Duck-typed so telemetry does not import the config module."""
    count = int(getattr(sim, "gpus", 5))
    name = str(getattr(sim, "gpu_name", GTX_1060))
    if not name.startswith("NVIDIA "):
        name = "NVIDIA " + name
    vram = float(getattr(sim, "vram_mb", 6144.0))
    limit = float(getattr(sim, "power_limit_w", 140.0))
    scale = 140.0 / limit if limit > 0 else 1.0  # same temperatures at the limit on any card
    return [replace(s, name=name, mem_total_mb=vram, power_limit_w=limit,
                    max_power_w=max(s.max_power_w, limit), c_per_w=s.c_per_w * scale)
            for s in default_gpu_specs(count)]


@dataclass
class _Allocation:
    mb: float
    pid: int
    name: str
    foreign: bool


@dataclass
class _GpuState:
    spec: SimGpuSpec
    uuid: str
    temp_c: float
    util_pct: float = 0.0
    power_w: float = 0.0
    throttle: tuple[str, ...] = ("idle",)
    held_temp_c: float | None = None
    allocations: dict[str, _Allocation] = field(default_factory=dict)


class SimulatedRig:
    """A ``GpuProbe`` for a rig that is not there, plus the hooks the rest of the sim drives."""

    def __init__(self, gpus: Sequence[SimGpuSpec] | None = None, clock: Clock | None = None,
                 ambient_c: float = 30.0) -> None:
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._ambient_c = ambient_c
        specs = list(gpus) if gpus is not None else default_gpu_specs()
        self._gpus = [_GpuState(spec=s, uuid=f"GPU-sim-{i:04d}-0000-0000-0000-000000000000",
                                temp_c=ambient_c) for i, s in enumerate(specs)]
        self._last = self._clock.now()
        self._pids = itertools.count(900_001)  # synthetic pids for owners that gave none
        for g in self._gpus:
            self._settle_power(g)

    @classmethod
    def from_sim_config(cls, sim: object, clock: Clock | None = None) -> SimulatedRig:
        """The rig galaxy.toml's ``[sim]`` table describes (engine.config.SimConfig)."""
        return cls(specs_from_sim_config(sim), clock=clock,
                   ambient_c=float(getattr(sim, "ambient_c", 30.0)))

    @classmethod
    def with_count(cls, count: int, clock: Clock | None = None, ambient_c: float = 30.0) -> SimulatedRig:
        return cls(default_gpu_specs(count), clock=clock, ambient_c=ambient_c)

    # --- GpuProbe ---
    def status(self) -> ProbeStatus:
        counts = Counter(g.spec.name.removeprefix("NVIDIA ").removeprefix("GeForce ") for g in self._gpus)
        what = ", ".join(f"{n} x {name}" for name, n in counts.items()) or "no GPUs"
        return ProbeStatus(available=True, kind="simulated", detail=f"simulated rig: {what}",
                           driver="simulated", gpu_count=len(self._gpus))

    def sample(self) -> list[GpuSample]:
        with self._lock:
            self.advance(self._clock.now())
            return [self._sample_one(i, g) for i, g in enumerate(self._gpus)]

    def close(self) -> None:
        """Nothing to release; kept for the protocol."""

    # --- driving the model ---
    @property
    def gpu_count(self) -> int:
        return len(self._gpus)

    def advance(self, now: float) -> None:
        """Integrate the thermal model up to ``now`` (a time earlier than the last is ignored)."""
        with self._lock:
            dt = now - self._last
            if dt <= 0:
                return
            self._last = now
            steps = min(1000, max(1, math.ceil(dt / _MAX_STEP_S)))
            h = dt / steps
            for g in self._gpus:
                for _ in range(steps):
                    self._step(g, h)

    def set_load(self, gpu_index: int, util_pct: float) -> None:
        with self._lock:
            self.advance(self._clock.now())
            g = self._gpu(gpu_index)
            g.util_pct = max(0.0, min(100.0, float(util_pct)))
            self._settle_power(g)

    def load(self, gpu_index: int) -> float:
        with self._lock:
            return self._gpu(gpu_index).util_pct

    def allocate(self, gpu_index: int, owner: str, mb: float, pid: int | None = None,
                 name: str | None = None, *, foreign: bool = False) -> None:
        """Set ``owner``'s VRAM on the card to ``mb`` (a second call replaces, not adds).

        Raises GpuOutOfMemory when the card would exceed its VRAM, as CUDA would."""
        with self._lock:
            g = self._gpu(gpu_index)
            others = sum(a.mb for o, a in g.allocations.items() if o != owner)
            if mb < 0:
                raise ValueError(f"allocate: mb must be >= 0, got {mb}")
            if others + mb > g.spec.mem_total_mb:
                raise GpuOutOfMemory(
                    f"simulated GPU {gpu_index}: {owner} asked for {mb:.0f} MB, "
                    f"{g.spec.mem_total_mb - others:.0f} MB free of {g.spec.mem_total_mb:.0f} MB")
            prev = g.allocations.get(owner)
            the_pid = pid if pid is not None else (prev.pid if prev else next(self._pids))
            g.allocations[owner] = _Allocation(mb=float(mb), pid=the_pid, name=name or owner,
                                               foreign=foreign)

    def free(self, gpu_index: int, owner: str) -> float:
        """Release ``owner``'s VRAM; returns the MB freed (0 when it held none)."""
        with self._lock:
            a = self._gpu(gpu_index).allocations.pop(owner, None)
            return a.mb if a else 0.0

    def used_by(self, gpu_index: int) -> dict[str, float]:
        with self._lock:
            return {o: a.mb for o, a in self._gpu(gpu_index).allocations.items()}

    def free_mb(self, gpu_index: int) -> float:
        with self._lock:
            g = self._gpu(gpu_index)
            return g.spec.mem_total_mb - sum(a.mb for a in g.allocations.values())

    def inject_foreign(self, gpu_index: int, name: str, mb: float, pid: int | None = None) -> int:
        """A process galaxy did not start (a desktop, someone's notebook). Returns its pid;
        remove it with ``free(gpu_index, f"foreign:{pid}")``."""
        with self._lock:
            the_pid = pid if pid is not None else next(self._pids)
            self.allocate(gpu_index, f"foreign:{the_pid}", mb, pid=the_pid, name=name, foreign=True)
            return the_pid

    def heat(self, gpu_index: int, target_c: float, hold: bool = True) -> None:
        """Force the card's temperature (for thermal-guard tests). With ``hold`` it stays there
        until ``cool()``; without, the model relaxes from it as time passes."""
        with self._lock:
            self.advance(self._clock.now())
            g = self._gpu(gpu_index)
            g.temp_c = float(target_c)
            g.held_temp_c = float(target_c) if hold else None
            self._settle_power(g)

    def cool(self, gpu_index: int) -> None:
        """Release a held temperature; the model takes over from the current reading."""
        with self._lock:
            self.advance(self._clock.now())
            self._gpu(gpu_index).held_temp_c = None

    def set_ambient(self, ambient_c: float) -> None:
        with self._lock:
            self.advance(self._clock.now())
            self._ambient_c = float(ambient_c)
            for g in self._gpus:
                self._settle_power(g)

    # --- the model ---
    def _gpu(self, index: int) -> _GpuState:
        if not 0 <= index < len(self._gpus):
            raise IndexError(f"simulated rig has GPUs 0..{len(self._gpus) - 1}, not {index}")
        return self._gpus[index]

    def _thermal_cap_w(self, g: _GpuState) -> float:
        """The power whose steady temperature is as far below the throttle point as the card
        is above it: the cap at 83 C holds it there, and a hotter card is cut harder."""
        s = g.spec
        below = s.throttle_c - max(0.0, g.temp_c - s.throttle_c)
        return max(s.idle_power_w, (below - self._ambient_c) / s.c_per_w)

    def _settle_power(self, g: _GpuState) -> None:
        """Power and throttle reasons for the current load and temperature."""
        s = g.spec
        demand = s.idle_power_w + g.util_pct / 100.0 * (s.max_power_w - s.idle_power_w)
        reasons: list[str] = []
        power = demand
        if power > s.power_limit_w:
            power = s.power_limit_w
            reasons.append("sw_power_cap")
        if g.temp_c >= s.throttle_c - 0.5:
            cap = self._thermal_cap_w(g)
            if power > cap:
                power = cap
                reasons.append("sw_thermal")
        if g.temp_c >= HW_SLOWDOWN_C:
            power = min(power, s.idle_power_w + 0.3 * (power - s.idle_power_w))
            reasons += ["hw_slowdown", "hw_thermal"]
        if g.util_pct <= 0.0:
            reasons.append("idle")
        g.power_w = power
        g.throttle = tuple(reasons)

    def _step(self, g: _GpuState, h: float) -> None:
        if g.held_temp_c is not None:
            g.temp_c = g.held_temp_c
        else:
            target = self._ambient_c + g.spec.c_per_w * g.power_w
            g.temp_c = target + (g.temp_c - target) * math.exp(-h / g.spec.tau_s)
        self._settle_power(g)

    def _clocks(self, g: _GpuState) -> tuple[float, float]:
        s = g.spec
        if g.util_pct <= 0.0:
            return float(s.idle_sm_mhz), float(s.idle_mem_mhz)
        demand = s.idle_power_w + g.util_pct / 100.0 * (s.max_power_w - s.idle_power_w)
        ratio = min(1.0, g.power_w / demand) if demand > 0 else 1.0
        # Clocks scale roughly with the cube root of power at the top of the V/F curve.
        sm = s.idle_sm_mhz + (s.boost_sm_mhz - s.idle_sm_mhz) * ratio ** (1 / 3)
        mem = s.mem_mhz if ratio > 0.5 else s.mem_mhz * 0.5
        return float(round(sm)), float(round(mem))

    def _fan_pct(self, g: _GpuState) -> float:
        """A typical stock curve: 30% up to 50 C, 100% at 85 C."""
        return round(max(30.0, min(100.0, 30.0 + (g.temp_c - 50.0) * 2.0)), 0)

    def _sample_one(self, index: int, g: _GpuState) -> GpuSample:
        sm, mem = self._clocks(g)
        procs = tuple(GpuProcess(pid=a.pid, name=a.name, used_mb=a.mb) for a in g.allocations.values())
        return GpuSample(
            index=index, name=g.spec.name + SIM_SUFFIX, uuid=g.uuid,
            util_pct=round(g.util_pct, 1),
            mem_used_mb=round(float(sum(a.mb for a in g.allocations.values())), 1),
            mem_total_mb=g.spec.mem_total_mb, temp_c=round(g.temp_c, 1),
            power_w=round(g.power_w, 1), power_limit_w=g.spec.power_limit_w,
            clock_sm_mhz=sm, clock_mem_mhz=mem, fan_pct=self._fan_pct(g),
            throttle_reasons=g.throttle, processes=procs, simulated=True)

