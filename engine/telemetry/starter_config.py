"""The starter ``galaxy.toml`` that ``galaxy init`` writes from the hardware it detects.

Why generated text (not a dump of GalaxyConfig): the operator reads and edits this file, so
it carries comments that say what was detected and how to change it (e.g. the field notes'
brain on GPUs 0+3). It must parse with ``engine.config.parse_config``; ``galaxy init``
checks that before writing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.telemetry.protocol import GpuSample, ProbeStatus

OLLAMA_BASE_PORT = 11434  # Ollama's default; one instance per GPU on the next ports


@dataclass(frozen=True)
class DetectedGpu:
    index: int
    name: str
    vram_mb: float | None


def detected_gpus(samples: list[GpuSample]) -> list[DetectedGpu]:
    return [DetectedGpu(s.index, s.name, s.mem_total_mb) for s in samples]


def suggested_llm(vram_mb: float | None) -> str:
    """An Ollama model that fits the card (Q4 weights plus a few GB of context)."""
    if vram_mb is None or vram_mb < 5000:
        return "qwen2.5:3b"
    if vram_mb < 14000:
        return "qwen2.5:7b"  # the field notes' worker model on 6 GB cards
    return "qwen2.5:14b"


def _q(text: str) -> str:
    return json.dumps(text)  # a TOML basic string is a JSON string for our purposes


def render_starter_config(rig: str, root: str, gpus: list[DetectedGpu], status: ProbeStatus,
                          cpu_workers: int, sim_gpus: int | None = None) -> str:
    lines = [
        "# galaxy.toml: written by `galaxy init` from the hardware it detected.",
        f"# Detected: {status.detail}",
        "# Reference: docs/config.md. Check it with `galaxy doctor`.",
        "",
        "[rig]",
        f"name = {_q(rig)}",
        f"root = {_q(root)}",
        "",
    ]
    if gpus:
        lines += ["# One worker per GPU, each with its own Ollama instance on its own port.",
                  "# The field notes' layout puts a brain (a bigger model) on two cards instead, e.g.:",
                  "#   [[group]]",
                  "#   name = \"brain\"",
                  "#   gpus = [0, 3]",
                  "#   role = \"brain\"",
                  "#   models = { llm = \"qwen2.5:14b\" }",
                  ""]
        for g in gpus:
            vram = f", {g.vram_mb:.0f} MB" if g.vram_mb is not None else ""
            lines += [
                f"# GPU {g.index}: {g.name}{vram}",
                "[[group]]",
                f"name = \"gpu{g.index}\"",
                f"gpus = [{g.index}]",
                "role = \"worker\"          # worker | brain",
                "preferred_classes = [\"llm\", \"script\", \"cpu\"]",
                "backend = \"ollama\"       # ollama | openai | none",
                f"endpoint = \"http://127.0.0.1:{OLLAMA_BASE_PORT + g.index}\"",
                f"models = {{ llm = {_q(suggested_llm(g.vram_mb))} }}",
                "",
            ]
    else:
        lines += [
            f"# No GPU detected. {status.detail}",
            f"# galaxy runs {cpu_workers} CPU-only worker(s): they take cpu-class tasks (shell work);",
            "# script and llm tasks wait until a GPU group or an LLM endpoint is configured.",
            "",
        ]
        for i in range(cpu_workers):
            lines += [
                "[[group]]",
                f"name = \"cpu{i}\"",
                "gpus = []",
                "role = \"worker\"",
                "preferred_classes = [\"cpu\"]",
                "backend = \"none\"",
                "",
            ]
    lines += [
        "[thresholds]",
        "temp_hot_c = 83      # the thermal guard stops new claims on a card this hot",
        "temp_resume_c = 75   # ... and resumes when it has cooled to this",
        "",
    ]
    if sim_gpus is not None:
        lines += [
            "# `galaxy supervise --sim` runs on this simulated rig (clearly marked as simulated).",
            "[sim]",
            f"gpus = {sim_gpus}",
            "gpu_name = \"GeForce GTX 1060 6GB\"",
            "vram_mb = 6144",
            "power_limit_w = 140",
            "",
        ]
    return "\n".join(lines)
