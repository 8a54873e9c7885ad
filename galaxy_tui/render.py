"""Pure formatting: snapshot pieces -> Textual ``Content`` with theme-variable styles.

No widget state and no clock here, so every frame is a function of the snapshot alone
(which is what makes the snapshot tests deterministic).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from textual.content import Content

from engine.snapshot import GpuView, WorkerView

WARM_C = 75.0
HOT_C = 83.0
SPARK = " ▁▂▃▄▅▆▇█"

RESIDENCY_STYLE = {
    "idle": "$text-muted",
    "booting_llm": "$warning",
    "booting_script": "$warning",
    "unloading": "$warning",
    "llm_ready": "$success",
    "llm_busy": "$accent bold",
    "script_ready": "$success",
    "script_busy": "$accent bold",
}
WORKER_STYLE = {
    "running": "$success",
    "idle": "$success",
    "busy": "$success",
    "paused": "$warning bold",
    "draining": "$warning",
    "backoff": "$warning",
    "starting": "$text-muted",
    "stopped": "$text-muted",
    "fatal": "$error bold",
    "hot": "$error bold",
}

Part = tuple[str, str] | str


def same_look(a: Content | str, b: Content | str) -> bool:
    """Equal text AND styles (``Content.__eq__`` compares the text only)."""
    if isinstance(a, Content) and isinstance(b, Content):
        return a.plain == b.plain and a.spans == b.spans
    return type(a) is type(b) and a == b


def short_gpu_name(name: str) -> str:
    """"NVIDIA GeForce GTX 1060 6GB" -> "GTX 1060 6GB": the vendor words never differ on one rig."""
    for prefix in ("NVIDIA GeForce ", "NVIDIA ", "GeForce "):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name.removesuffix(" (simulated)")  # the top bar and panel title already say SIMULATED


def clip(text: str | None, width: int) -> str:
    """Fit text to exactly ``width`` cells (ellipsis when cut)."""
    text = text or ""
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: max(width - 1, 0)] + "…"
    return text.ljust(width)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}"
    return f"{s // 3600}h{(s % 3600) // 60:02d}"


def fmt_clock(ts: float | None) -> str:
    """Local HH:MM:SS of an epoch time (the snapshot's, never the wall clock)."""
    if ts is None:
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def fmt_rate(tps: float | None) -> str:
    return "-" if tps is None else f"{tps:.0f}t/s" if tps >= 10 else f"{tps:.1f}t/s"


def fmt_gb(mb: float | None) -> str:
    return "?" if mb is None else f"{mb / 1024:.1f}"


def sparkline(values: Iterable[float], width: int, top: float = 100.0) -> str:
    vals = list(values)[-width:]
    chars = []
    for v in vals:
        frac = 0.0 if top <= 0 else max(0.0, min(1.0, v / top))
        chars.append(SPARK[round(frac * (len(SPARK) - 1))])
    return "".join(chars).rjust(width)


def temp_part(gpu: GpuView) -> tuple[str, str]:
    """Temperature coloured AND labelled, so it reads without colour too."""
    t = gpu.temp_c
    if t is None:
        return ("n/a", "$text-muted")
    if gpu.thermal_hold:
        return (f"{t:.0f}C HOLD", "$error bold reverse")
    if t >= HOT_C:
        return (f"{t:.0f}C HOT", "$error bold reverse")
    if t >= WARM_C:
        return (f"{t:.0f}C warm", "$warning bold")
    return (f"{t:.0f}C", "$success")


def vram_parts(gpu: GpuView, width: int) -> list[Part]:
    """A bar split galaxy (█) / other processes (▒) / free (·): glyphs differ, not just colours."""
    total = gpu.mem_total_mb or 0.0
    if total <= 0 or width <= 0:
        return [("?" * max(width, 0), "$text-muted")]
    galaxy = gpu.mem_galaxy_mb or 0.0
    if gpu.mem_other_mb is not None:
        other = gpu.mem_other_mb
    else:
        other = max((gpu.mem_used_mb or 0.0) - galaxy, 0.0)
    g = min(width, round(galaxy / total * width))
    o = min(width - g, round(other / total * width))
    f = width - g - o
    return [("█" * g, "$accent"), ("▒" * o, "$warning"), ("·" * f, "$text-muted")]


def power_text(gpu: GpuView, short: bool) -> str:
    if gpu.power_w is None:
        return "n/a"
    if short or gpu.power_limit_w is None:
        return f"{gpu.power_w:.0f}W"
    return f"{gpu.power_w:.0f}/{gpu.power_limit_w:.0f}W"


def util_text(gpu: GpuView) -> str:
    return "  -%" if gpu.util_pct is None else f"{gpu.util_pct:3.0f}%"


SHORT_STATE = {"running": "run", "paused": "PAUSED", "draining": "drain", "backoff": "boff", "starting": "start",
               "stopped": "stop", "fatal": "FATAL", "idle": "idle", "busy": "busy", "hot": "HOT"}


def worker_parts(worker: WorkerView | None, width: int, short: bool = False) -> tuple[str, str]:
    if worker is None:
        return (clip("-" if short else "no worker", width), "$text-muted")
    state = SHORT_STATE.get(worker.state, worker.state) if short else worker.state
    return (clip(state, width), WORKER_STYLE.get(worker.state, "$foreground"))


def task_text(worker: WorkerView | None, taken_at: float) -> tuple[str, str, str]:
    """(task label, elapsed, tokens/s) for the worker's current task."""
    if worker is None or not worker.current_task:
        return ("", "", "")
    label = worker.task_name or worker.current_task
    if worker.task_class:
        label = f"{label} ({worker.task_class})"
    started = worker.task_started_at
    elapsed = fmt_duration(taken_at - started) if started else "-"
    return (label, elapsed, fmt_rate(worker.tokens_per_s))


def gpu_narrow(gpu: GpuView | None, worker: WorkerView | None, width: int, taken_at: float) -> Content:
    """One line per card, for 80 columns: state, model, VRAM, temp, util+spark, power, worker, task."""
    return Content.assemble(*gpu_narrow_parts(gpu, worker, width, taken_at))


def gpu_narrow_parts(gpu: GpuView | None, worker: WorkerView | None, width: int, taken_at: float) -> list[Part]:
    """``gpu_narrow`` as (text, style) parts (the card draws parts: ``widgets/line_strips.py``)."""
    label = f"{gpu.index}" if gpu else "c"
    parts: list[Part] = [(clip(label, 2), "bold")]
    if gpu is not None:
        state = "DEGRADED" if gpu.degraded else gpu.residency
        parts += [(clip(state, 11), "$error bold" if gpu.degraded else RESIDENCY_STYLE.get(state, "")),
                  " ", (clip(gpu.resident_model or "-", 11), "$foreground"), " "]
        parts += vram_parts(gpu, 5)  # the bar and the GB used: VRAM reads without colour at 80 columns
        parts += [(f" {fmt_gb(gpu.mem_used_mb)}G".ljust(6), ""), (clip(temp_part(gpu)[0], 8), temp_part(gpu)[1]),
                  " ", util_text(gpu), " ", clip(power_text(gpu, short=True), 4), " "]
    else:
        parts += [(clip(f"cpu worker {worker.worker_id if worker else ''}", 54), "$text-muted")]
    parts.append(worker_parts(worker, 6, short=True))
    task, elapsed, rate = task_text(worker, taken_at)
    used = sum(len(p if isinstance(p, str) else p[0]) for p in parts)
    rest = width - used - 1
    if task and rest > 4:
        tail = f" {elapsed} {rate}" if rest > 24 else f" {elapsed}"
        parts += [" ", (clip(task, max(rest - len(tail), 1)), "$foreground"), (tail, "$text-muted")]
    return parts


def gpu_wide(gpu: GpuView | None, worker: WorkerView | None, width: int, taken_at: float) -> Content:
    """Two lines per card (the 120-column layout): identity and memory above, activity below."""
    line1, line2 = gpu_wide_parts(gpu, worker, width, taken_at)
    return Content.assemble(*line1, "\n", *line2)


def gpu_wide_parts(gpu: GpuView | None, worker: WorkerView | None, width: int,
                   taken_at: float) -> tuple[list[Part], list[Part]]:
    """``gpu_wide``'s two lines as (text, style) parts."""
    if gpu is None:
        line1: list[Part] = [("c ", "bold"), (clip("CPU worker", 20), "$text-muted")]
        line2: list[Part] = ["  "]
    else:
        state = "DEGRADED: " + gpu.degraded if gpu.degraded else gpu.residency
        t_text, t_style = temp_part(gpu)
        used = gpu.mem_used_mb
        line1 = [(clip(f"{gpu.index}", 2), "bold"), (clip(short_gpu_name(gpu.name), 16), "bold"), " ",
                 (clip(state, 12), "$error bold" if gpu.degraded else RESIDENCY_STYLE.get(gpu.residency, "")),
                 " ", (clip(gpu.resident_model or "no model", 18), "$foreground"), " VRAM "]
        line1 += vram_parts(gpu, 14)
        line1 += [f" {fmt_gb(used)}/{fmt_gb(gpu.mem_total_mb)}G ".ljust(12),
                  (clip(t_text, 9), t_style), " ", (power_text(gpu, short=False), "")]
        if gpu.fan_pct is not None:
            line1 += [(f"  fan {gpu.fan_pct:.0f}%", "$text-muted")]
        line2 = ["  ", ("util ", "$text-muted"), util_text(gpu), " ",
                 (sparkline(gpu.util_history, 16), "$accent"), "  "]
    task, elapsed, rate = task_text(worker, taken_at)
    wid = worker.worker_id if worker else "-"
    line2 += [("worker ", "$text-muted"), (clip(wid, 6), "bold"), " ", worker_parts(worker, 8), " "]
    if worker is not None and worker.state_reason:
        line2 += [(clip(f"({worker.state_reason})", 14), "$text-muted"), " "]
    if task:
        used = sum(len(p if isinstance(p, str) else p[0]) for p in line2)
        tail = f" {elapsed}  {rate}"
        line2 += [(clip(task, max(width - used - len(tail) - 1, 4)), "$foreground"), (tail, "$text-muted")]
    return line1, line2
