"""``galaxy sim-ollama``: run a simulated Ollama server on its own (to try the backend, the
``ollama`` CLI/client or a plan without a rig); ``galaxy ollama-ps``: what an Ollama
instance holds, with CPU-fallback flags from its size_vram."""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.sim import SimModelSpec


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("sim-ollama", help="run a simulated Ollama server (a test double) on loopback")
    p.add_argument("--port", type=int, default=11435, help="port (0: any free one; default 11435)")
    p.add_argument("--gpus", default="0", help="the GPU group it stands for, e.g. 0,3 (default 0)")
    p.add_argument("--time-scale", type=float, default=0.01,
                   help="real seconds per simulated second (1 = real load times; default 0.01)")
    p.add_argument("--model", action="append", default=[], metavar="NAME[:TAG]=SIZE_MB,LOAD_S,TOKENS_PER_S",
                   help="serve this model (repeatable); default: the field notes' Qwen 7B/14B and SmolLM2")
    p.set_defaults(func=_sim_ollama)

    q = subparsers.add_parser("ollama-ps", help="models loaded in an Ollama instance (size, size_vram, expiry)")
    q.add_argument("endpoint", nargs="?", default="http://127.0.0.1:11434")
    q.add_argument("--json", action="store_true", help="the loaded models and CPU-fallback warnings as JSON")
    q.set_defaults(func=_ollama_ps)


def _parse_model(text: str) -> SimModelSpec:
    from engine.sim import SimModelSpec

    name, _, figures = text.partition("=")
    if not name or not figures:
        raise SystemExit(f"--model {text!r}: expected NAME=SIZE_MB,LOAD_S,TOKENS_PER_S")
    try:
        size_mb, load_s, tps = (float(x) for x in figures.split(","))
    except ValueError:
        raise SystemExit(f"--model {text!r}: SIZE_MB, LOAD_S and TOKENS_PER_S must be three numbers") from None
    return SimModelSpec(name, size_mb=size_mb, load_s=load_s, tokens_per_s=tps)


def _sim_ollama(args: argparse.Namespace) -> int:
    from engine.sim import SimulatedOllamaServer, field_notes_models

    models = [_parse_model(m) for m in args.model] or field_notes_models()
    gpus = tuple(int(g) for g in str(args.gpus).split(",") if g.strip())
    server = SimulatedOllamaServer(models, gpu_ids=gpus, time_scale=args.time_scale, port=args.port).start()
    print(f"simulated Ollama (a test double) on {server.host} for GPUs {gpus}: "
          f"{', '.join(m.name for m in models)}; Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _ollama_ps(args: argparse.Namespace) -> int:
    from engine.inference.ollama_backend import OllamaBackend
    from engine.inference.protocol import BackendError
    from engine.residency.crosscheck import cpu_fallback_findings

    backend = OllamaBackend(args.endpoint, timeout_s=10)
    try:
        loaded = backend.loaded()
    except BackendError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"endpoint": args.endpoint, "error": str(exc), "models": []}))
        else:
            print(f"galaxy ollama-ps: {exc}")
        return 1
    if getattr(args, "json", False):
        print(json.dumps({"endpoint": args.endpoint, "models": [dataclasses.asdict(m) for m in loaded],
                          "warnings": [f.message for f in cpu_fallback_findings(loaded, [], ())]}, indent=2))
        return 0
    if not loaded:
        print(f"{backend.name}: no model loaded")
    for m in loaded:
        size = f"{(m.size_bytes or 0) / 1e9:.1f} GB"
        vram = f"{(m.size_vram_bytes or 0) / 1e9:.1f} GB"
        print(f"{m.name:30} size {size:>8}  vram {vram:>8}  until {m.expires_at}")
    for f in cpu_fallback_findings(loaded, [], ()):
        print(f"WARNING: {f.message}")
    return 0
