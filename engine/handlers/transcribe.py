"""`transcribe` tasks: faster-whisper, with the model kept warm between tasks.

Loading whisper costs seconds on a GPU (more on a cold disk) while a short clip takes
less than that, so the handler loads on the first task and keeps the model until the
worker's residency plan calls ``release()`` (e.g. to hand the card back to Ollama).

Params: ``audio`` (path; relative to the worker's workdir), optional ``language``,
``output`` (a .json file receiving text + segments), ``beam_size``, ``compute_type``,
``model``. Result: text, segments (start, end, text), duration_s of the audio,
elapsed_s (model time), decode_s, realtime_factor (audio seconds per model second),
model, device, load_s (cold-load time, only on the task that loaded the model).

The audio file is opened once and checked on its descriptor (``safeio.open_regular``): a
regular file of at most ``MAX_AUDIO_BYTES``; the decoder reads that descriptor, never the
path again. A FIFO or device (named, or swapped in after the check) or a bigger file fails
the task, not retryable, naming the file: it never blocks the worker or fills its memory.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from engine import safeio
from engine.atomic import atomic_write_json
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
)
from engine.handlers.warm import WarmModelHandler
from engine.model import Task

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what whisper consumes; decode_audio resamples to it
MAX_AUDIO_BYTES = 2 * 1024 ** 3
"""params.audio is refused above this: decoded whole to 16 kHz float32 (about 230 MB an hour of sound)."""


def open_audio(path: Path) -> BinaryIO:
    """The audio file, opened once: a regular file (links the task names are followed) of at
    most ``MAX_AUDIO_BYTES``, else a non-retryable failure naming it (params.audio)."""
    try:
        fd = safeio.open_regular(path, MAX_AUDIO_BYTES, follow_symlinks=True)
    except safeio.UnsafeFileError as exc:
        raise TaskFailure(f"audio file {exc.path} {exc.reason} (params.audio)", retryable=False) from None
    except OSError as exc:
        raise TaskFailure(f"cannot open audio file {path}: {exc.strerror or exc} (params.audio)",
                          retryable=False) from None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _ctranslate2_cuda_devices() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except (ImportError, OSError, RuntimeError):  # no ctranslate2, a broken CUDA library or driver: no GPU
        return 0


class TranscribeHandler(WarmModelHandler):
    """Runs `transcribe` tasks in the worker process; one whisper model resident at a time."""
    kind = "whisper"

    def __init__(self, clock: Clock | None = None,
                 cuda_device_count: Callable[[], int] = _ctranslate2_cuda_devices) -> None:
        super().__init__(clock, cuda_device_count)

    def run(self, task: Task, ctx: TaskContext) -> HandlerResult:
        params = task.params
        audio_path = readable_file(params.get("audio"), ctx, "audio", "audio")
        out = output_path(params, ctx, (".json",))
        language = params.get("language")
        if language is not None and (not isinstance(language, str) or not language.strip()):
            raise TaskFailure(f"params.language must be a language code like 'en', got {language!r}",
                              retryable=False)
        beam_size = positive_int(params, "beam_size", 5)
        models_config = ctx.extras.get("models")
        wanted = resolve_model("transcribe", requested_model_name("transcribe", params, task.model, models_config),
                               models_config)

        decode_started = time.perf_counter()
        audio = self._decode(audio_path)  # first: a bad file should not cost a model load
        decode_s = time.perf_counter() - decode_started
        duration_s = len(audio) / SAMPLE_RATE
        if duration_s <= 0:
            raise TaskFailure(f"audio file has no samples: {audio_path}", retryable=False)
        load_s = self._ensure_loaded(wanted, ctx, params.get("compute_type"))

        started = time.perf_counter()
        segments = self._transcribe(audio, language, beam_size, duration_s, ctx)
        elapsed_s = time.perf_counter() - started
        text = " ".join(s["text"] for s in segments).strip()

        result: dict[str, Any] = {
            "text": text,
            "segments": segments,
            "duration_s": round(duration_s, 3),
            "elapsed_s": round(elapsed_s, 4),
            "decode_s": round(decode_s, 4),
            "realtime_factor": round(duration_s / elapsed_s, 2) if elapsed_s > 0 else None,
            "model": wanted.name,
            "device": self.device,
            "audio": str(audio_path),
        }
        if load_s is not None:
            result["load_s"] = round(load_s, 3)
        if out is not None:
            atomic_write_json(out, {"text": text, "segments": segments, "audio": str(audio_path),
                                    "duration_s": result["duration_s"], "model": wanted.name}, indent=1)
            result["output"] = str(out)
        return HandlerResult(result=result, output_tail=text[-2000:], model=wanted.name)

    # ---- steps ----
    def _ensure_loaded(self, wanted: ResolvedModel, ctx: TaskContext, compute_type: object) -> float | None:
        """Load ``wanted`` unless it is already warm; returns the load time when it loaded."""
        device = choose_device(ctx.gpu_ids, self._cuda_device_count())
        if compute_type is None:
            compute_type = "int8" if device == "cpu" else "auto"
        if not isinstance(compute_type, str):
            raise TaskFailure(f"params.compute_type must be a string, got {compute_type!r}", retryable=False)
        if self._loaded == (wanted, device, compute_type):
            return None
        self.release()
        force_offline()
        from faster_whisper import WhisperModel

        started = time.perf_counter()
        try:
            self._model = WhisperModel(str(wanted.path), device=device, compute_type=compute_type,
                                       local_files_only=True)
        except ValueError as exc:  # e.g. a compute type this device cannot do
            raise TaskFailure(f"cannot load whisper model {wanted.name!r} on {device}: {exc}",
                              retryable=False) from exc
        except RuntimeError as exc:  # CUDA out of memory and friends: another card may work
            raise TaskFailure(f"cannot load whisper model {wanted.name!r} on {device}: {exc}") from exc
        self._loaded = (wanted, device, compute_type)
        load_s = time.perf_counter() - started
        log.info("loaded whisper %s on %s (%s) in %.2fs", wanted.name, device, compute_type, load_s)
        return load_s

    @staticmethod
    def _decode(audio_path: Path) -> Any:
        """Decode apart from inference, so a bad file is a definition error naming the file."""
        with open_audio(audio_path) as fh:  # checked first: a bad file costs no import either
            from faster_whisper import decode_audio

            try:
                return decode_audio(fh, sampling_rate=SAMPLE_RATE)
            except Exception as exc:
                raise TaskFailure(f"cannot decode audio file {audio_path}: {type(exc).__name__}: {exc}",
                                  retryable=False) from exc

    def _transcribe(self, audio: Any, language: str | None, beam_size: int, duration_s: float,
                    ctx: TaskContext) -> list[dict[str, Any]]:
        segments_iter, _info = self._model.transcribe(audio, language=language, beam_size=beam_size)
        segments: list[dict[str, Any]] = []
        for seg in segments_iter:  # a generator: decoding happens as we iterate
            segments.append({"start": round(seg.start, 2), "end": round(seg.end, 2), "text": seg.text.strip()})
            ctx.report_progress(f"{len(segments)} segments, {seg.end:.1f}/{duration_s:.1f}s: {seg.text.strip()}",
                                None)
            check_continue(ctx, self._clock, "transcription")
        return segments
