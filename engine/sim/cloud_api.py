"""A simulated cloud model on loopback, for the live demo (``galaxy up --sim --demo``).

Why: a newcomer should see an escalation go the whole way (pending, approved, sent,
answered, charged) without an account or the internet. It answers the subset of
Anthropic's Messages API that ``escalation.providers.AnthropicProvider`` uses
(POST /v1/messages with ``x-api-key`` and ``anthropic-version``; content blocks; usage
in tokens), binds 127.0.0.1 only, and counts what it received.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SIM_CLOUD_KEY_ENV = "GALAXY_SIM_CLOUD_KEY"
SIM_CLOUD_KEY = "sim-cloud-local-key"  # not a secret: the server is ours and answers only on loopback
MAX_BODY_BYTES = 2 * 1024 * 1024


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class SimulatedCloudApi:
    """``start()`` it, point an external ``[[node]]`` (backend "anthropic") at ``url``."""

    def __init__(self, *, api_key: str = SIM_CLOUD_KEY, model: str = "sim-cloud-large") -> None:
        self.api_key = api_key
        self.model = model
        self.requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-cloud", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> SimulatedCloudApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The response for one request body (pure apart from the counter)."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(body.get("max_tokens"), int):
            return 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                    "message": "messages and max_tokens are required"}}
        prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        text = (f"(simulated cloud answer) I read {_tokens(prompt)} words. The short version: it holds, "
                "with one caveat worth a test.")
        with self._lock:
            self.requests += 1
        return 200, {"id": f"msg_sim_{self.requests}", "type": "message", "role": "assistant",
                     "model": str(body.get("model") or self.model), "stop_reason": "end_turn",
                     "content": [{"type": "text", "text": text}],
                     "usage": {"input_tokens": _tokens(prompt) + (_tokens(str(body["system"])) if body.get("system") else 0),
                               "output_tokens": _tokens(text)}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # health checks see a live server
                self._reply(200, {"status": "ok", "simulated": True})

            def do_POST(self) -> None:
                if self.path != "/v1/messages":
                    self._reply(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
                    return
                if self.headers.get("x-api-key") != api.api_key or not self.headers.get("anthropic-version"):
                    self._reply(401, {"type": "error", "error": {"type": "authentication_error",
                                                                 "message": "invalid x-api-key"}})
                    return
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self._reply(413, {"type": "error", "error": {"type": "request_too_large", "message": "too big"}})
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._reply(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                                 "message": "body is not JSON"}})
                    return
                status, payload = api.answer(body if isinstance(body, dict) else {})
                self._reply(status, payload)

        return Handler
