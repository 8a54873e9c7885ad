"""A task's own input file (embed's params.input, transcribe's params.audio) is read bounded:
a file over the limit, a FIFO or a device fails the task at once, not retryable, naming the
file; it never blocks the worker or fills its memory. No model is needed: all of this is
decided before one is loaded."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from engine.handlers import embed, transcribe
from engine.handlers.base import TaskContext, TaskFailure
from engine.handlers.embed import EmbedHandler
from engine.handlers.transcribe import TranscribeHandler
from engine.model import Task, TaskType

CLIP = Path(__file__).resolve().parents[1] / "fixtures" / "speech" / "quick_brown_fox.wav"


def make_ctx(workdir: Path) -> TaskContext:
    return TaskContext(worker_id="w-test", gpu_ids=(), env={}, workdir=str(workdir), deadline=time.time() + 600)


def embed_task(params: dict[str, Any]) -> Task:
    return Task(task_id="em1", name="embed", type=TaskType.EMBED, params=params)


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)  # sparse: costs no disk
    return path


def test_an_embed_input_over_the_limit_fails_naming_the_file(tmp_path: Path) -> None:
    big = _sparse(tmp_path / "items.txt", embed.MAX_INPUT_BYTES + 1)
    with pytest.raises(TaskFailure, match=f"over the {embed.MAX_INPUT_BYTES:,}-byte limit") as info:
        EmbedHandler().run(embed_task({"input": "items.txt"}), make_ctx(tmp_path))
    assert info.value.retryable is False and str(big) in str(info.value)


def test_an_embed_input_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "items.txt").write_bytes(b"first\nsecond \xff\n")
    with pytest.raises(TaskFailure, match=r"items\.txt line 2: not UTF-8") as info:
        EmbedHandler().run(embed_task({"input": "items.txt"}), make_ctx(tmp_path))
    assert info.value.retryable is False


def test_an_embed_input_fifo_fails_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "items.txt")
    with pytest.raises(TaskFailure, match=r"items\.txt") as info:
        EmbedHandler().run(embed_task({"input": "items.txt"}), make_ctx(tmp_path))
    assert info.value.retryable is False


@pytest.mark.parametrize("kind,reason", [("fifo", "is a FIFO"), ("devzero", "is a character device"),
                                         ("big", f"over the {transcribe.MAX_AUDIO_BYTES:,}-byte limit")])
def test_audio_that_is_a_fifo_a_device_or_too_big_fails_at_decode_without_hanging(tmp_path: Path, kind: str,
                                                                                  reason: str) -> None:
    """The decoder is handed the descriptor checked here: a FIFO or device swapped in at the path
    after the handler's first look (readable_file) is caught too, not opened by the decoder."""
    audio = tmp_path / "talk.wav"
    if kind == "fifo":
        os.mkfifo(audio)
    elif kind == "devzero":
        os.symlink("/dev/zero", audio)
    else:
        _sparse(audio, transcribe.MAX_AUDIO_BYTES + 1)
    with pytest.raises(TaskFailure, match=reason) as info:
        TranscribeHandler._decode(audio)
    assert info.value.retryable is False and str(audio) in str(info.value) and "params.audio" in str(info.value)


def test_real_audio_decodes_from_the_checked_descriptor() -> None:
    pytest.importorskip("faster_whisper")
    samples = TranscribeHandler._decode(CLIP)
    assert len(samples) / transcribe.SAMPLE_RATE > 1.0
