"""Cloud providers over httpx: Anthropic's Messages API and OpenAI-compatible chat
completions. Keys come from the environment; nothing here decides whether to send:
only ``EscalationManager`` calls ``send``, and only for an approved escalation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import httpx


class ProviderError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProviderAnswer:
    text: str
    tokens_in: int
    tokens_out: int
    model: str
    stop_reason: str | None = None


class CloudProvider(Protocol):
    name: str
    model: str

    def build_payload(self, system: str, user: str, max_tokens: int) -> dict[str, Any]:
        """The exact JSON body that would be sent (shown to the operator before approval)."""
        ...

    def send(self, payload: dict[str, Any], timeout_s: float) -> ProviderAnswer: ...


def _key(env: str | None) -> str:
    if not env:
        raise ProviderError("no auth_env configured for this provider")
    value = os.environ.get(env)
    if not value:
        raise ProviderError(f"environment variable {env} is not set")
    return value


@dataclass
class AnthropicProvider:
    name: str
    base_url: str
    model: str
    key_env: str | None = "ANTHROPIC_API_KEY"
    version: str = "2023-06-01"
    transport: httpx.BaseTransport | None = None

    def build_payload(self, system: str, user: str, max_tokens: int) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": max_tokens, "system": system,
                "messages": [{"role": "user", "content": user}]}

    def send(self, payload: dict[str, Any], timeout_s: float) -> ProviderAnswer:
        headers = {"x-api-key": _key(self.key_env), "anthropic-version": self.version,
                   "content-type": "application/json"}
        url = self.base_url.rstrip("/") + "/v1/messages"
        data = _post(url, payload, headers, timeout_s, self.transport)
        try:
            text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
            usage = data["usage"]
            return ProviderAnswer(text, int(usage["input_tokens"]), int(usage["output_tokens"]),
                                  str(data.get("model", self.model)), data.get("stop_reason"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(f"unexpected Anthropic response shape: {exc!r}") from None


@dataclass
class OpenAIChatProvider:
    name: str
    base_url: str
    model: str
    key_env: str | None = "OPENAI_API_KEY"
    transport: httpx.BaseTransport | None = None

    def build_payload(self, system: str, user: str, max_tokens: int) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": max_tokens,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}

    def send(self, payload: dict[str, Any], timeout_s: float) -> ProviderAnswer:
        headers = {"authorization": f"Bearer {_key(self.key_env)}", "content-type": "application/json"}
        base = self.base_url.rstrip("/")
        url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        data = _post(url, payload, headers, timeout_s, self.transport)
        try:
            choice = data["choices"][0]
            usage = data["usage"]
            return ProviderAnswer(choice["message"]["content"] or "", int(usage["prompt_tokens"]),
                                  int(usage["completion_tokens"]), str(data.get("model", self.model)),
                                  choice.get("finish_reason"))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProviderError(f"unexpected OpenAI response shape: {exc!r}") from None


def _post(url: str, payload: dict[str, Any], headers: dict[str, str], timeout_s: float,
          transport: httpx.BaseTransport | None) -> dict[str, Any]:
    try:
        with httpx.Client(timeout=timeout_s, transport=transport) as client:
            resp = client.post(url, json=payload, headers=headers)
    except httpx.TimeoutException as exc:
        raise ProviderError(f"timeout after {timeout_s}s calling {url}") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL (a typo in the endpoint) is no HTTPError
        raise ProviderError(f"cannot reach {url}: {exc}") from exc
    if resp.status_code >= 400:
        raise ProviderError(f"{url} answered HTTP {resp.status_code}: {resp.text[:300]}")
    try:
        body = resp.json()
    except ValueError:
        raise ProviderError(f"{url} did not answer JSON") from None
    if not isinstance(body, dict):
        raise ProviderError(f"{url} answered {type(body).__name__}, expected an object")
    return body
