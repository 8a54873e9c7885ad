"""Ollama's wire format for the simulated server (docs/api.md of ollama/ollama): response
objects, NDJSON streaming over chunked HTTP/1.1, and the request handler."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from engine.sim.ollama_models import FOREVER_S, SimModelSpec

if TYPE_CHECKING:
    from engine.sim.ollama_server import SimulatedOllamaServer

SIM_VERSION = "0.6.8-sim"


def prompt_of(body: dict[str, Any], chat: bool) -> str | None:
    """The text to answer, or None when the request is only a load/unload."""
    if chat:
        msgs = body.get("messages") or []
        text = "\n".join(str(m.get("content", "")) for m in msgs if isinstance(m, dict))
        return text if msgs else None
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) and prompt != "" else None


def ns(seconds: float) -> int:
    return round(seconds * 1e9)


def rfc3339(ts: float) -> str:
    if ts >= FOREVER_S:
        ts = FOREVER_S
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=ts)).isoformat().replace("+00:00", "Z")


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def chunk(model: str, chat: bool, text: str) -> dict[str, Any]:
    if chat:
        return {"model": model, "created_at": now_iso(), "message": {"role": "assistant", "content": text},
                "done": False}
    return {"model": model, "created_at": now_iso(), "response": text, "done": False}


def final(model: str, chat: bool, reason: str, stats: dict[str, Any]) -> dict[str, Any]:
    out = chunk(model, chat, "")
    out.update(done=True, done_reason=reason, **stats)
    return out


def collapse(chunks: list[dict[str, Any]], chat: bool) -> tuple[int, dict[str, Any]]:
    """stream=false: one object carrying the whole text and the final statistics."""
    for c in chunks:
        if "error" in c:
            return 500, c
    final = dict(chunks[-1])
    if chat:
        final["message"] = {"role": "assistant", "content": "".join(c["message"]["content"] for c in chunks)}
    else:
        final["response"] = "".join(c["response"] for c in chunks)
    return 200, final


def describe(spec: SimModelSpec) -> dict[str, Any]:
    digest = hashlib.sha256(spec.name.encode()).hexdigest()
    return {"name": spec.name, "model": spec.name, "size": spec.size_bytes, "digest": digest,
            "details": {"parent_model": "", "format": "gguf", "family": spec.family, "families": [spec.family],
                        "parameter_size": spec.parameter_size, "quantization_level": spec.quantization}}


def make_handler(server: SimulatedOllamaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as Go's net/http: no 40 ms delayed-ACK stall per reply

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests and the supervisor have their own logs."""

        def do_GET(self) -> None:
            if self.path in ("/", ""):
                self._send_text(200, "Ollama is running")
            elif self.path == "/api/version":
                self._send_json(200, {"version": SIM_VERSION})
            elif self.path == "/api/ps":
                self._send_json(200, server.ps())
            elif self.path == "/api/tags":
                self._send_json(200, server.tags())
            else:
                self._send_json(404, {"error": f"unknown path {self.path}"})

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
            except (ValueError, json.JSONDecodeError) as exc:
                self._send_json(400, {"error": f"invalid request body: {exc}"})
                return
            with server._lock:
                server.requests.append((self.path, body))
            if self.path in ("/api/generate", "/api/chat"):
                status, payload = server.handle_generate(body, chat=self.path == "/api/chat")
                if isinstance(payload, dict):
                    self._send_json(status, payload)
                else:
                    self._send_stream(payload)
            elif self.path == "/api/show":
                self._send_json(*server.show(body))
            else:
                self._send_json(404, {"error": f"unknown path {self.path}"})

        def _send_text(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): nothing to tell it

        def _send_stream(self, chunks: Any) -> None:
            """NDJSON with chunked transfer encoding, as Ollama streams."""
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for c in chunks:
                    line = json.dumps(c).encode() + b"\n"
                    self.wfile.write(f"{len(line):X}\r\n".encode() + line + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away (a cancelled task): the generator's finally still runs
            finally:
                chunks.close()

    return Handler
