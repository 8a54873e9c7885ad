"""``galaxy ollama-ps`` against the simulated Ollama, and ``sim-ollama``'s model option."""

from __future__ import annotations

import pytest

from engine.cli.cmd_ollama import _parse_model
from engine.cli.main import main
from engine.inference.ollama_backend import OllamaBackend
from engine.sim import SimModelSpec, SimulatedOllamaServer


def test_ollama_ps_lists_models_and_warns_about_cpu_fallback(capsys) -> None:
    spec = SimModelSpec("qwen2.5:7b", size_mb=4700, gpu_fraction=0.25)
    with SimulatedOllamaServer([spec], time_scale=0) as server:
        assert main(["ollama-ps", server.host]) == 0
        assert "no model loaded" in capsys.readouterr().out
        OllamaBackend(server.host).load("qwen2.5:7b")
        assert main(["ollama-ps", server.host]) == 0
    out = capsys.readouterr().out
    assert "qwen2.5:7b" in out and "WARNING: model qwen2.5:7b on no gpu runs partly on CPU" in out


def test_ollama_ps_with_nothing_listening_fails_cleanly(capsys) -> None:
    assert main(["ollama-ps", "http://127.0.0.1:9"]) == 1
    assert "galaxy ollama-ps:" in capsys.readouterr().out


def test_sim_ollama_model_option() -> None:
    spec = _parse_model("tiny:1b=500,2.5,40")
    assert (spec.name, spec.size_mb, spec.load_s, spec.tokens_per_s) == ("tiny:1b", 500, 2.5, 40)
    for bad in ("tiny", "tiny=1,2", "tiny=a,b,c"):
        with pytest.raises(SystemExit, match="--model"):
            _parse_model(bad)
