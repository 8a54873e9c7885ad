"""Builds the supervisor's cloud tier from the config: the rig's own GPU groups become
nodes (tier from the group, else worker 0 / brain 1), then the configured ``[[node]]``s."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from engine.config import GalaxyConfig
from engine.escalation.cloud_tier import CloudTier
from engine.event_types import OnEvent
from engine.paths import RigPaths
from engine.queue.protocol import EscalationQueue
from engine.routing.nodes import NodeConfig
from engine.store.open import Channels

DEFAULT_LLM = {"worker": "qwen2.5:7b", "brain": "qwen2.5:14b"}


def group_nodes(config: GalaxyConfig, endpoints: dict[str, tuple[str, str]] | None = None) -> tuple[NodeConfig, ...]:
    nodes = []
    configured = {n.name for n in config.routing.nodes}
    for g in config.groups:
        backend, endpoint = (endpoints or {}).get(g.name, (g.backend, g.endpoint or ""))
        if backend not in ("ollama", "openai") or not endpoint or g.name in configured:
            continue
        tier = g.tier if g.tier is not None else (1 if g.role == "brain" else 0)
        model = g.models.get("llm") or DEFAULT_LLM.get(g.role, DEFAULT_LLM["worker"])
        nodes.append(NodeConfig(name=g.name, endpoint=endpoint, backend=backend, model=model, tier=tier,
                                context_window=32768 if g.role == "brain" else 8192))
    return tuple(nodes)


def build_cloud_tier(config: GalaxyConfig, paths: RigPaths, queue: EscalationQueue, *,
                     endpoints: dict[str, tuple[str, str]] | None = None,
                     outcome: Callable[[str, str], Any] | None = None,
                     on_event: OnEvent = lambda k, d: None, channels: Channels | None = None) -> CloudTier:
    """The supervisor's cloud tier; escalation records and audit in ``channels`` (None: the rig's files)."""
    routing = replace(config.routing, nodes=group_nodes(config, endpoints) + config.routing.nodes)
    return CloudTier(paths, routing, config.escalation, queue, queue.resolve_failed, awaiting=queue.awaiting,
                     outcome=outcome, on_event=on_event,
                     store=channels.escalations if channels is not None else None,
                     audit=channels.audit if channels is not None else None)
