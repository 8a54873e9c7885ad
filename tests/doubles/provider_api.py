"""A local HTTP double of the cloud provider APIs galaxy escalates to.

It follows the documented request and response shapes of Anthropic's Messages API
(POST /v1/messages, x-api-key + anthropic-version headers, content blocks, usage
input_tokens/output_tokens) and OpenAI chat completions (POST /v1/chat/completions,
Bearer auth, choices[].message, usage prompt_tokens/completion_tokens), checks them
strictly (a wrong shape gets the provider's 400/401 error body) and counts every request,
so tests can prove that nothing was sent before approval or after a denial.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class ProviderApiDouble:
    def __init__(self, *, api_key: str = "test-key", answer: str = "The answer is 42.") -> None:
        self.api_key = api_key
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.fail_status: int | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ProviderApiDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    body = None
                double.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if double.fail_status:
                    self._reply(double.fail_status, {"type": "error", "error": {"type": "overloaded_error",
                                                                                "message": "injected"}})
                    return
                if self.path == "/v1/messages":
                    self._anthropic(body)
                elif self.path == "/v1/chat/completions":
                    self._openai(body)
                else:
                    self._reply(404, {"error": {"message": f"no route {self.path}"}})

            def _anthropic(self, body: Any) -> None:
                if self.headers.get("x-api-key") != double.api_key:
                    self._reply(401, {"type": "error", "error": {"type": "authentication_error",
                                                                 "message": "invalid x-api-key"}})
                    return
                if not self.headers.get("anthropic-version"):
                    self._reply(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                                 "message": "anthropic-version header is required"}})
                    return
                if not isinstance(body, dict) or not isinstance(body.get("max_tokens"), int) \
                        or not isinstance(body.get("messages"), list) or not body.get("model"):
                    self._reply(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                                 "message": "model, max_tokens, messages required"}})
                    return
                text_in = str(body.get("system", "")) + " ".join(str(m.get("content", "")) for m in body["messages"])
                self._reply(200, {
                    "id": f"msg_{len(double.requests):04d}", "type": "message", "role": "assistant",
                    "model": body["model"], "content": [{"type": "text", "text": double.answer}],
                    "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": _tokens(text_in), "output_tokens": _tokens(double.answer)}})

            def _openai(self, body: Any) -> None:
                if self.headers.get("authorization") != f"Bearer {double.api_key}":
                    self._reply(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                                "code": "invalid_api_key"}})
                    return
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
                    self._reply(400, {"error": {"message": "model and messages are required",
                                                "type": "invalid_request_error"}})
                    return
                text_in = " ".join(str(m.get("content", "")) for m in body["messages"])
                p, c = _tokens(text_in), _tokens(double.answer)
                self._reply(200, {
                    "id": f"chatcmpl-{len(double.requests)}", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": double.answer},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}})

        return Handler
