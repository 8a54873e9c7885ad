"""OllamaBackend through the real ``ollama`` client against the simulated Ollama server
(real HTTP on loopback): streaming, nanosecond statistics, load/unload, ps, errors."""

from __future__ import annotations

import socket
import threading

import pytest

from engine.inference.ollama_backend import OllamaBackend
from engine.inference.protocol import BackendError, BackendTimeout
from engine.sim import InMemoryVramLedger, SimModelSpec, SimulatedOllamaServer

MODEL = "qwen2.5:7b"


@pytest.fixture
def ledger() -> InMemoryVramLedger:
    return InMemoryVramLedger(gpu_count=1)


@pytest.fixture
def server(ledger):
    spec = SimModelSpec(MODEL, size_mb=4700, load_s=120, tokens_per_s=32, prompt_tokens_per_s=400)
    with SimulatedOllamaServer([spec], gpu_ids=(0,), ledger=ledger, time_scale=0.0) as s:
        yield s


@pytest.fixture
def backend(server) -> OllamaBackend:
    return OllamaBackend(server.host, timeout_s=10)


def test_generate_streams_chunks_and_reads_the_final_statistics(backend, server) -> None:
    chunks: list[str] = []
    r = backend.generate(MODEL, "tell me about the rig", on_chunk=chunks.append)
    assert len(chunks) > 5 and "".join(chunks) == r.text
    assert r.eval_count == len(chunks)
    assert r.tokens_per_s == pytest.approx(32.0)  # eval_count / eval_duration x 1e9
    assert r.load_duration_ns == 120 * 10**9  # cold load, apart from generation
    assert r.prompt_eval_count == 5 and r.prompt_eval_duration_ns == pytest.approx(5 / 400 * 1e9, rel=1e-6)
    assert r.done_reason == "stop" and r.model == MODEL
    warm = backend.generate(MODEL, "again")
    assert warm.load_duration_ns is not None and warm.load_duration_ns < 10**9


def test_generate_sends_system_options_and_keep_alive_as_ollama_expects(backend, server) -> None:
    backend.generate(MODEL, "p", system="be brief", options={"num_predict": 4, "temperature": 0}, keep_alive=-1)
    path, body = server.requests[-1]
    assert path == "/api/generate"
    assert body["stream"] is True and body["system"] == "be brief" and body["keep_alive"] == -1
    assert body["options"]["num_predict"] == 4
    (m,) = backend.loaded()
    assert m.expires_at is not None and m.expires_at.startswith("2286")  # negative keep_alive: forever


def test_load_then_loaded_then_unload(backend, ledger) -> None:
    r = backend.load(MODEL, keep_alive="10m")
    assert r.load_duration_ns == 120 * 10**9 and r.done_reason == "load"
    (m,) = backend.loaded()
    assert m.name == MODEL and m.size_bytes == m.size_vram_bytes == 4700 * 1024 * 1024
    assert m.expires_at
    backend.unload(MODEL)
    assert backend.loaded() == []
    assert ledger.used_by(0) == {}


def test_health_reports_version_and_latency(backend) -> None:
    h = backend.health()
    assert h.ok and h.latency_ms is not None and "ollama" in h.detail


def test_unknown_model_is_a_backend_error_naming_the_server(backend, server) -> None:
    with pytest.raises(BackendError, match=r"not found.*HTTP 404") as exc:
        backend.generate("nope:1b", "x")
    assert f"127.0.0.1:{server.port}" in str(exc.value)


def test_failed_load_is_a_backend_error(backend, server) -> None:
    server.specs[MODEL].fail_next_loads = 1
    with pytest.raises(BackendError, match="llama runner"):
        backend.load(MODEL)
    assert backend.load(MODEL).done_reason == "load"


def test_mid_stream_failure_is_a_backend_error(backend, server) -> None:
    server.specs[MODEL].fail_mid_stream = 1
    seen: list[str] = []
    with pytest.raises(BackendError, match="simulated failure"):
        backend.generate(MODEL, "x", on_chunk=seen.append)
    assert seen  # partial output arrived before the failure


def test_a_hung_server_is_a_backend_timeout(server) -> None:
    server.specs[MODEL].hang_next_load = 1
    impatient = OllamaBackend(server.host, timeout_s=0.3)
    try:
        with pytest.raises(BackendTimeout):
            impatient.generate(MODEL, "x")
    finally:
        server.release_hangs()


def test_nothing_listening_is_a_backend_error_and_unhealthy() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = OllamaBackend(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(BackendError):
        dead.generate(MODEL, "x")
    with pytest.raises(BackendError):
        dead.loaded()
    assert not dead.health().ok


def test_unloading_while_streaming_cuts_the_stream(backend, server) -> None:
    slow = SimulatedOllamaServer([SimModelSpec(MODEL, load_s=0, tokens_per_s=20)], time_scale=1.0).start()
    try:
        b = OllamaBackend(slow.host, timeout_s=10)
        b.load(MODEL)
        started = threading.Event()
        errors: list[Exception] = []

        def gen() -> None:
            try:
                b.generate(MODEL, "a long answer please", on_chunk=lambda t: started.set())
            except Exception as exc:  # noqa: BLE001 - recorded for the assert
                errors.append(exc)

        t = threading.Thread(target=gen)
        t.start()
        assert started.wait(5)
        b.unload(MODEL)
        t.join(10)
        assert len(errors) == 1 and isinstance(errors[0], BackendError) and "unloaded" in str(errors[0])
    finally:
        slow.stop()
