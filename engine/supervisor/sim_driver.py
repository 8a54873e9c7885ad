"""``galaxy supervise --sim``: a simulated rig and one simulated Ollama server per group.

The workers are real processes; only the hardware is simulated. This driver closes the
loop: a busy worker (from its status file) puts load on its cards, so temperatures climb
and throttle as on the real rig; VRAM follows what each simulated Ollama server loads and
what workers report resident (whisper, embeddings). Everything it shows says "simulated".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.clock import Clock
from engine.config import GalaxyConfig, GroupConfig
from engine.supervisor.snapshot_builder import WorkerInfo
from engine.telemetry.protocol import GpuSample
from engine.telemetry.sim_rig import SimGpuSpec, SimulatedRig, default_gpu_specs

if TYPE_CHECKING:
    from engine.sim.ollama_models import SimModelSpec
    from engine.sim.ollama_server import SimulatedOllamaServer

BUSY_UTIL_PCT = 97.0
IDLE_UTIL_PCT = 0.0
DEFAULT_WORKER_MODEL = "qwen2.5:7b"
DEFAULT_BRAIN_MODEL = "qwen2.5:14b"


def make_sim_rig(config: GalaxyConfig, clock: Clock | None = None, gpu_count: int | None = None) -> SimulatedRig:
    """The field notes' rig by default (5 x GTX 1060 6GB); ``[sim]`` in galaxy.toml changes it."""
    sim = config.sim
    n = gpu_count if gpu_count is not None else sim.gpus
    specs = default_gpu_specs(n)
    if sim.gpu_name != "GeForce GTX 1060 6GB" or sim.vram_mb != 6144.0 or sim.power_limit_w != 140.0:
        specs = [SimGpuSpec(name=f"NVIDIA {sim.gpu_name}", mem_total_mb=sim.vram_mb,
                            max_power_w=max(s.max_power_w, sim.power_limit_w), power_limit_w=sim.power_limit_w,
                            c_per_w=s.c_per_w) for s in specs]
    return SimulatedRig(specs, clock=clock, ambient_c=sim.ambient_c)


def _model_specs(group: GroupConfig) -> list[SimModelSpec]:
    from engine.sim.ollama_models import SimModelSpec

    small = SimModelSpec(name=DEFAULT_WORKER_MODEL)
    big = SimModelSpec(name=DEFAULT_BRAIN_MODEL, size_mb=9300.0, load_s=140.0, tokens_per_s=9.0,
                       parameter_size="14.8B")
    specs = {small.name: small, big.name: big}
    for name in group.models.values():
        specs.setdefault(name, SimModelSpec(name=name))
    return list(specs.values())


@dataclass
class SimRigDriver:
    rig: SimulatedRig
    servers: dict[str, SimulatedOllamaServer] = field(default_factory=dict)  # group name -> its server
    _util: dict[int, float] = field(default_factory=dict)
    _vram: dict[tuple[int, str], float] = field(default_factory=dict)

    def start_servers(self, groups: Sequence[GroupConfig], clock: Clock | None = None,
                      time_scale: float = 0.001) -> dict[str, tuple[str, str]]:
        """One SimulatedOllamaServer per GPU group on a free loopback port; returns
        group -> (backend, endpoint) for the workers' command lines."""
        from engine.sim.ollama_server import SimulatedOllamaServer

        endpoints: dict[str, tuple[str, str]] = {}
        for g in groups:
            if not g.gpus:
                continue
            server = SimulatedOllamaServer(_model_specs(g), gpu_ids=g.gpus, ledger=self.rig,
                                           time_scale=time_scale, clock=clock).start()
            self.servers[g.name] = server
            endpoints[g.name] = ("ollama", server.host)
        return endpoints

    def stop(self) -> None:
        for server in self.servers.values():
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - stopping a double must not block shutdown
                logging.getLogger(__name__).warning("stopping a simulated server failed: %s", exc)
        self.servers.clear()

    def drive(self, workers: Sequence[WorkerInfo], now: float) -> None:
        for w in workers:
            st = w.status
            fresh = st is not None and w.pid is not None and st.pid == w.pid
            # CPU work does not load the card (a demo's etl task must not heat a GPU)
            busy = fresh and st is not None and bool(st.current_task) and st.task_class != "cpu"
            util = BUSY_UTIL_PCT if busy else IDLE_UTIL_PCT
            for gpu in w.group.gpus:
                if gpu >= self.rig.gpu_count:
                    continue
                if self._util.get(gpu) != util:
                    self.rig.set_load(gpu, util)
                    self._util[gpu] = util
                self._drive_vram(w, gpu, st if fresh else None)

    def _drive_vram(self, w: WorkerInfo, gpu: int, st: object) -> None:
        """Non-LLM models (whisper, embeddings) the worker says it holds. LLM VRAM is the
        simulated Ollama server's own allocation, so it is not counted twice."""
        owner = f"galaxy:{w.group.name}"
        mb = 0.0
        resident = getattr(st, "resident_model", None)
        residency = str(getattr(st, "residency", "idle"))
        vram = getattr(st, "resident_vram_mb", None)
        if resident and vram and not residency.startswith("llm") and residency != "booting_llm":
            mb = float(vram) / max(1, len(w.group.gpus))
        key = (gpu, owner)
        if self._vram.get(key, 0.0) == mb:
            return
        try:
            if mb > 0:
                self.rig.allocate(gpu, owner, mb, pid=w.pid, name=f"galaxy {w.group.name}: {resident}")
            else:
                self.rig.free(gpu, owner)
            self._vram[key] = mb
        except MemoryError:
            pass  # the worker will see its own OOM; the snapshot shows what really fits

    def galaxy_pids(self, samples: Sequence[GpuSample] = ()) -> set[int]:
        ports = {f"ollama:{getattr(s, 'port', '')}:" for s in self.servers.values()}
        return {p.pid for s in samples for p in s.processes
                if p.name.startswith("galaxy ") or any(p.name.startswith(x) for x in ports)}
