"""`embed` tasks: sentence-transformers, with the model kept warm between tasks.

Params: ``texts`` (a list of strings) or ``input`` (a file: a JSON list of strings,
or plain text with one item per non-empty line; relative to the worker's workdir),
``output`` (.npy for a float32 matrix, .jsonl for one {"index", "vector"} per line;
default ``<workdir>/<task_id>.embeddings.npy``), ``batch_size`` (default 32),
``normalize`` (unit-length vectors), ``model``. Result: count, dim, rate (items/s),
elapsed_s, output, model, device, load_s (only on the task that loaded the model).

The input file is read through the bounded reader (``engine.safeio``): a regular file of at
most ``MAX_INPUT_BYTES``, strict UTF-8. A FIFO, a device, a directory or a bigger file fails
the task, not retryable, with a reason naming the file: never a blocked or starved worker.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import safeio
from engine.atomic import atomic_write_bytes
from engine.clock import Clock
from engine.handlers.base import HandlerResult, TaskContext, TaskFailure
from engine.handlers.models import (
    ResolvedModel,
    choose_device,
    force_offline,
    requested_model_name,
    resolve_model,
)
from engine.handlers.script_io import (
    check_continue,
    output_path,
    positive_int,
    readable_file,
    workdir_path,
)
from engine.handlers.warm import WarmModelHandler
from engine.model import Task

log = logging.getLogger(__name__)

MAX_INPUT_BYTES = 64 * 1024 * 1024
"""params.input is refused above this (hundreds of thousands of items: split bigger sets into tasks)."""

CHUNK_BATCHES = 8
"""Encode this many batches between progress reports / cancellation checks."""


def _torch_cuda_devices() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except (ImportError, OSError, RuntimeError):  # no torch, a broken CUDA library or driver: no GPU for us
        return 0


def read_texts(task: Task, ctx: TaskContext) -> list[str]:
    """The items to embed, from params.texts or the params.input file, validated."""
    params = task.params
    if "texts" in params and "input" in params:
        raise TaskFailure("give params.texts or params.input, not both", retryable=False)
    if "texts" in params:
        texts = params["texts"]
        if not isinstance(texts, list):
            raise TaskFailure(f"params.texts must be a list of strings, got {type(texts).__name__}", retryable=False)
        for i, item in enumerate(texts):
            if not isinstance(item, str):
                raise TaskFailure(f"params.texts[{i}] must be a string, got {type(item).__name__}", retryable=False)
        if not texts:
            raise TaskFailure("nothing to embed: params.texts is an empty list", retryable=False)
        return texts
    if "input" not in params:
        raise TaskFailure("an embed task needs params.texts (a list) or params.input (a file)", retryable=False)
    path = readable_file(params["input"], ctx, "input", "embed input")
    try:  # bounded: a FIFO swapped in after the check, a device or a huge file fails the task, never the worker
        raw = safeio.read_text(path, MAX_INPUT_BYTES, follow_symlinks=True)
    except safeio.UnsafeFileError as exc:
        raise TaskFailure(f"embed input {exc.path} {exc.reason} (params.input)", retryable=False) from None
    except OSError as exc:
        raise TaskFailure(f"cannot read embed input {path}: {exc}", retryable=False) from None
    if path.suffix.lower() == ".json":
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TaskFailure(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}", retryable=False) from None
        except RecursionError:
            raise TaskFailure(f"{path}: not valid JSON: nested too deep", retryable=False) from None
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise TaskFailure(f"{path}: a .json input must be a list of strings", retryable=False)
        texts = items
    else:
        texts = [line.strip() for line in raw.splitlines() if line.strip()]
    if not texts:
        raise TaskFailure(f"nothing to embed: {path} has no items", retryable=False)
    return texts


def write_vectors(path: Path, vectors: Any) -> None:
    """Atomically: a reader never sees half a vectors file."""
    import numpy as np

    if path.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, np.asarray(vectors, dtype=np.float32))
        atomic_write_bytes(path, buf.getvalue())
    else:
        lines = (json.dumps({"index": i, "vector": [round(float(x), 7) for x in row]}) for i, row in enumerate(vectors))
        atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


class EmbedHandler(WarmModelHandler):
    """Runs `embed` tasks in the worker process; one embedding model resident at a time."""
    kind = "embedding"

    def __init__(self, clock: Clock | None = None,
                 cuda_device_count: Callable[[], int] = _torch_cuda_devices) -> None:
        super().__init__(clock, cuda_device_count)

    def run(self, task: Task, ctx: TaskContext) -> HandlerResult:
        params = task.params
        texts = read_texts(task, ctx)
        out = output_path(params, ctx, (".npy", ".jsonl"))
        if out is None:
            out = workdir_path(f"{task.task_id}.embeddings.npy", ctx, "output")
        batch_size = positive_int(params, "batch_size", 32)
        normalize = bool(params.get("normalize", False))
        models_config = ctx.extras.get("models")
        wanted = resolve_model("embed", requested_model_name("embed", params, task.model, models_config),
                               models_config)

        load_s = self._ensure_loaded(wanted, ctx)
        started = time.perf_counter()
        vectors = self._encode(texts, batch_size, normalize, ctx)
        elapsed_s = time.perf_counter() - started
        write_vectors(out, vectors)

        count, dim = int(vectors.shape[0]), int(vectors.shape[1])
        result: dict[str, Any] = {
            "count": count,
            "dim": dim,
            "rate": round(count / elapsed_s, 1) if elapsed_s > 0 else None,
            "elapsed_s": round(elapsed_s, 4),
            "output": str(out),
            "model": wanted.name,
            "device": self.device,
        }
        if load_s is not None:
            result["load_s"] = round(load_s, 3)
        return HandlerResult(result=result, output_tail=f"{count} vectors x {dim} -> {out}", model=wanted.name)

    def _ensure_loaded(self, wanted: ResolvedModel, ctx: TaskContext) -> float | None:
        device = choose_device(ctx.gpu_ids, self._cuda_device_count())
        if self._loaded == (wanted, device):
            return None
        self.release()
        force_offline()
        from sentence_transformers import SentenceTransformer

        started = time.perf_counter()
        try:
            self._model = SentenceTransformer(str(wanted.path), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:  # not a sentence-transformers folder
            raise TaskFailure(f"cannot load embedding model {wanted.name!r} from {wanted.path}: {exc}",
                              retryable=False) from exc
        except RuntimeError as exc:  # CUDA out of memory and friends: another card may work
            raise TaskFailure(f"cannot load embedding model {wanted.name!r} on {device}: {exc}") from exc
        self._loaded = (wanted, device)
        load_s = time.perf_counter() - started
        log.info("loaded embeddings %s on %s in %.2fs", wanted.name, device, load_s)
        return load_s

    def _encode(self, texts: list[str], batch_size: int, normalize: bool, ctx: TaskContext) -> Any:
        import numpy as np

        chunk = batch_size * CHUNK_BATCHES
        parts = []
        for start in range(0, len(texts), chunk):
            parts.append(self._model.encode(texts[start:start + chunk], batch_size=batch_size,
                                            convert_to_numpy=True, normalize_embeddings=normalize,
                                            show_progress_bar=False))
            done = min(start + chunk, len(texts))
            ctx.report_progress(f"embedded {done}/{len(texts)}", None)
            check_continue(ctx, self._clock, "embedding")
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
