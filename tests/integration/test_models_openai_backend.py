"""OpenAICompatBackend against a real llama_cpp.server (SmolLM2-135M) and real loopback
HTTP servers that answer the way a loading or broken server does."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from engine.clock import FakeClock
from engine.inference.openai_backend import OpenAICompatBackend
from engine.inference.protocol import BackendError, LlmBackend

if TYPE_CHECKING:
    from tests.integration.conftest import LlamaServer


def free_loopback_port() -> int:
    """A port nothing listens on (bound and released), for connection-refused cases."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _CannedHandler(BaseHTTPRequestHandler):
    """Answers every request with the server's canned status and body."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self) -> None:
        status, body, content_type = self.server.canned  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def canned_server() -> Iterator[ThreadingHTTPServer]:
    """A real loopback HTTP server; tests set ``.canned = (status, body, content_type)``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CannedHandler)
    server.canned = (200, b"{}", "application/json")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


# ---- health and its start period ----

def test_refused_connection_is_starting_within_the_start_period_and_failed_after() -> None:
    clock = FakeClock()
    backend = OpenAICompatBackend(f"http://127.0.0.1:{free_loopback_port()}", start_period_s=120, clock=clock)
    early = backend.health()
    assert not early.ok and early.starting and "start period" in early.detail

    clock.advance(121)
    late = backend.health()
    assert not late.ok and not late.starting


def test_503_loading_counts_as_starting_not_failed(canned_server: ThreadingHTTPServer) -> None:
    # llama.cpp's server while it loads the model
    canned_server.canned = (503, b'{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}',
                            "application/json")
    clock = FakeClock()
    backend = OpenAICompatBackend(url_of(canned_server), start_period_s=60, clock=clock)
    health = backend.health()
    assert health.starting and not health.ok and health.latency_ms is not None

    clock.advance(61)
    assert not backend.health().starting
    backend.mark_started()  # the server was restarted: a new start period
    assert backend.health().starting


def test_http_error_on_generate_is_a_backend_error_with_the_status(canned_server: ThreadingHTTPServer) -> None:
    canned_server.canned = (404, b'{"error":{"message":"The model `qwen` does not exist."}}', "application/json")
    with pytest.raises(BackendError, match=r"HTTP 404.*does not exist"):
        OpenAICompatBackend(url_of(canned_server)).generate("qwen", "hi")


def test_error_event_mid_stream_raises(canned_server: ThreadingHTTPServer) -> None:
    chunk = {"choices": [{"delta": {"content": "Hel"}, "finish_reason": None}], "model": "m"}
    body = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps({'error': {'message': 'CUDA OOM'}})}\n\n"
    canned_server.canned = (200, body.encode(), "text/event-stream")
    pieces: list[str] = []
    with pytest.raises(BackendError, match="CUDA OOM"):
        OpenAICompatBackend(url_of(canned_server)).generate("m", "hi", on_chunk=pieces.append)
    assert pieces == ["Hel"]


def test_usage_from_the_final_chunk_becomes_eval_counts(canned_server: ThreadingHTTPServer) -> None:
    # vLLM with stream_options.include_usage: a last chunk with empty choices and usage
    events = [{"model": "m", "choices": [{"delta": {"content": w}, "finish_reason": None}]} for w in ("a", "b", "c")]
    events.append({"model": "m", "choices": [{"delta": {}, "finish_reason": "length"}]})
    events.append({"model": "m", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3}})
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    canned_server.canned = (200, body.encode(), "text/event-stream")
    result = OpenAICompatBackend(url_of(canned_server)).generate("m", "hi")
    assert result.text == "abc" and result.done_reason == "length"
    assert result.eval_count == 3 and result.prompt_eval_count == 11
    assert result.total_duration_ns is not None and result.total_duration_ns > 0


def test_connection_refused_on_generate_is_a_backend_error() -> None:
    backend = OpenAICompatBackend(f"http://127.0.0.1:{free_loopback_port()}")
    with pytest.raises(BackendError, match="ConnectError"):
        backend.generate("m", "hi")


# ---- the real server ----

@pytest.mark.models
def test_real_llama_server_health_models_and_streamed_generation(llama_server: LlamaServer) -> None:
    backend: LlmBackend = OpenAICompatBackend(llama_server.base_url, start_period_s=0)
    health = backend.health()
    assert health.ok, health.detail
    assert OpenAICompatBackend(llama_server.base_url + "/v1/").health().ok  # the OpenAI-client style URL
    assert [m.name for m in backend.loaded()] == [str(llama_server.model_path)]

    pieces: list[str] = []
    result = backend.generate("smollm2", "Name three colours.", system="You are brief.",
                              options={"num_predict": 24, "temperature": 0, "num_ctx": 4096},
                              on_chunk=pieces.append, timeout_s=120)
    assert len(pieces) > 1  # streamed, not one block
    assert "".join(pieces) == result.text and result.text.strip()
    assert result.eval_count is not None and 1 < result.eval_count <= 24
    assert result.eval_duration_ns and result.tokens_per_s and result.tokens_per_s > 0
    assert result.total_duration_ns is not None and result.total_duration_ns >= result.eval_duration_ns
    assert result.done_reason in ("stop", "length")


@pytest.mark.models
def test_health_with_an_expected_model_checks_the_model_list(llama_server: LlamaServer) -> None:
    served = OpenAICompatBackend(llama_server.base_url, expected_model=llama_server.model_path.name)
    assert served.health().ok
    wrong = OpenAICompatBackend(llama_server.base_url, expected_model="qwen2.5-7b", start_period_s=0)
    health = wrong.health()
    assert not health.ok and not health.starting and "qwen2.5-7b" in health.detail


@pytest.mark.models
def test_load_and_unload_are_reported_no_ops(llama_server: LlamaServer) -> None:
    backend = OpenAICompatBackend(llama_server.base_url)
    assert backend.supports_unload is False
    assert backend.load("smollm2").done_reason.startswith("noop")
    backend.unload("smollm2")
    assert backend.health().ok  # the server and its model are still there
