"""Backends for configured nodes (imports are lazy: the `ollama` client and httpx load
only when a node of that kind exists)."""

from __future__ import annotations

from engine.inference.protocol import LlmBackend
from engine.routing.nodes import NodeConfig


def backend_for(node: NodeConfig) -> LlmBackend:
    if node.external:
        raise ValueError(f"node {node.name} is external: it is reached only through an approved escalation")
    if node.backend == "ollama":
        from engine.inference.ollama_backend import OllamaBackend

        return OllamaBackend(node.endpoint)
    if node.backend == "openai":
        from engine.inference.openai_backend import OpenAICompatBackend

        return OpenAICompatBackend(node.endpoint, api_key=node.auth_token())
    raise ValueError(f"node {node.name}: backend {node.backend!r} cannot serve local routing")
