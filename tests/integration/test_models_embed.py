"""EmbedHandler with the real all-MiniLM-L6-v2 on CPU."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from engine.handlers.base import TaskContext, TaskFailure
from engine.handlers.embed import EmbedHandler
from engine.model import Task, TaskType

GUITAR_1 = "A man is playing a guitar on stage."
GUITAR_2 = "Someone is strumming a guitar in front of an audience."
MARKET = "The stock market fell sharply after the interest rate announcement."
CAT_1 = "The cat is sleeping on the warm windowsill."
CAT_2 = "A kitten naps in the sun by the window."


def make_ctx(workdir: Path, **kw: Any) -> TaskContext:
    return TaskContext(worker_id="w-test", gpu_ids=(), env={}, workdir=str(workdir),
                       deadline=time.time() + 600, **kw)


def embed_task(params: dict[str, Any], task_id: str = "em1") -> Task:
    return Task(task_id=task_id, name="embed", type=TaskType.EMBED, params=params)


def cosine(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def handler() -> EmbedHandler:
    h = EmbedHandler()
    yield h
    h.release()


# ---- definition errors: caught before any model is loaded ----

@pytest.mark.parametrize("params, message", [
    ({"texts": []}, "params.texts is an empty list"),
    ({"texts": ["ok", 3]}, r"params.texts\[1\] must be a string"),
    ({"texts": "one string"}, "params.texts must be a list"),
    ({}, "needs params.texts"),
    ({"texts": ["a"], "input": "x.txt"}, "not both"),
    ({"texts": ["a"], "output": "vectors.csv"}, r"must end in .npy or .jsonl"),
    ({"texts": ["a"], "batch_size": 0}, "params.batch_size must be a positive integer"),
])
def test_bad_params_are_non_retryable_and_say_what_is_wrong(tmp_path: Path, params: dict[str, Any],
                                                            message: str) -> None:
    with pytest.raises(TaskFailure, match=message) as info:
        EmbedHandler().run(embed_task(params), make_ctx(tmp_path))
    assert info.value.retryable is False


def test_empty_input_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n   \n")
    with pytest.raises(TaskFailure, match=r"nothing to embed: .*empty.txt has no items"):
        EmbedHandler().run(embed_task({"input": "empty.txt"}), make_ctx(tmp_path))


def test_bad_json_input_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "items.json").write_text('[\n"one",\n"two"\n')
    with pytest.raises(TaskFailure, match=r"items.json: line \d+: not valid JSON"):
        EmbedHandler().run(embed_task({"input": "items.json"}), make_ctx(tmp_path))


def test_missing_input_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TaskFailure, match="embed input file not found") as info:
        EmbedHandler().run(embed_task({"input": "lost.txt"}), make_ctx(tmp_path))
    assert str(tmp_path / "lost.txt") in str(info.value)


# ---- the real model ----

@pytest.mark.models
def test_real_sentences_give_384_dims_and_similar_ones_are_closer(handler: EmbedHandler, tmp_path: Path) -> None:
    import numpy as np

    texts = [GUITAR_1, GUITAR_2, MARKET, CAT_1, CAT_2]
    out = handler.run(embed_task({"texts": texts, "output": "vec/out.npy"}), make_ctx(tmp_path))

    result = out.result
    assert result["count"] == 5 and result["dim"] == 384
    assert result["model"] == "all-MiniLM-L6-v2" and result["device"] == "cpu"
    assert result["rate"] > 0 and "load_s" in result
    vectors = np.load(tmp_path / "vec" / "out.npy")
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    guitar, guitar2, market, cat, cat2 = vectors
    assert cosine(guitar, guitar2) > cosine(guitar, market)
    assert cosine(cat, cat2) > cosine(cat, market)
    assert cosine(cat, cat2) > cosine(cat, guitar)


@pytest.mark.models
def test_input_file_to_jsonl_with_the_model_kept_warm(handler: EmbedHandler, tmp_path: Path) -> None:
    handler.run(embed_task({"texts": [GUITAR_1]}, task_id="first"), make_ctx(tmp_path))
    assert handler.resident_model == "all-MiniLM-L6-v2"
    assert (tmp_path / "first.embeddings.npy").exists()  # default output next to the task's workdir

    (tmp_path / "lines.txt").write_text(f"{CAT_1}\n\n{CAT_2}\n{MARKET}\n")
    progress: list[str | None] = []
    out = handler.run(embed_task({"input": "lines.txt", "output": "lines.jsonl", "batch_size": 2}, "second"),
                      make_ctx(tmp_path, report_progress=lambda text, rate: progress.append(text)))
    assert "load_s" not in out.result  # warm: no reload
    assert out.result["count"] == 3
    rows = [json.loads(line) for line in (tmp_path / "lines.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2] and all(len(r["vector"]) == 384 for r in rows)
    assert cosine(rows[0]["vector"], rows[1]["vector"]) > cosine(rows[0]["vector"], rows[2]["vector"])
    assert progress[-1] == "embedded 3/3"


@pytest.mark.models
def test_json_list_input_and_release(handler: EmbedHandler, tmp_path: Path) -> None:
    (tmp_path / "items.json").write_text(json.dumps([GUITAR_1, GUITAR_2]))
    out = handler.run(embed_task({"input": "items.json", "normalize": True}), make_ctx(tmp_path))
    assert out.result["count"] == 2
    handler.release()
    assert handler.resident_model is None


def test_unknown_embedding_model_fails_without_a_hub_download(tmp_path: Path) -> None:
    handler = EmbedHandler()
    with pytest.raises(TaskFailure, match="'BAAI/bge-large-en' not found") as info:
        handler.run(embed_task({"texts": ["x"], "model": "BAAI/bge-large-en"}), make_ctx(tmp_path))
    assert info.value.retryable is False and handler.resident_model is None
