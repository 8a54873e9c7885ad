"""A worker-side router over the nodes the supervisor publishes in its snapshot.

A group configured with ``backend = "router"`` runs no model of its own: each llm task is
routed across the cluster (the rig's GPU groups and the ``[[node]]``s), by complexity and
tier, with breakers and fallback. The node list (endpoints included, which in ``--sim``
are picked at start) comes from the snapshot, so the worker needs no copy of the config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.inference.protocol import GenerationResult
from engine.routing.backends import backend_for
from engine.routing.nodes import NodeConfig, RoutingConfig
from engine.routing.routed_backend import RoutedBackend
from engine.routing.router import Router
from engine.snapshot import NodeView, read_snapshot


def nodes_from_views(views: tuple[NodeView, ...], exclude: str | None = None) -> tuple[NodeConfig, ...]:
    """Local nodes to route to, plus external ones so the router knows when only an
    escalation could answer (it never sends to them)."""
    return tuple(NodeConfig(name=v.name, endpoint=v.endpoint, backend=v.backend, model=v.model, tier=v.tier,
                            context_window=v.context_window, max_concurrency=v.max_concurrency, external=v.external)
                 for v in views if v.name != exclude and (v.external or v.backend in ("ollama", "openai")))


class SnapshotRoutedBackend(RoutedBackend):
    """Rebuilds its router when the published node list changes; keeps breakers otherwise."""

    def __init__(self, snapshot_path: Path, worker_id: str | None = None) -> None:
        self.path = Path(snapshot_path)
        self.worker_id = worker_id
        self._key: tuple[object, ...] | None = None
        super().__init__(Router(RoutingConfig(), {}))
        self.refresh()

    def refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if self._key is not None and self._key[0] == st.st_mtime_ns:
            return
        try:
            snap = read_snapshot(self.path)
        except (OSError, ValueError):  # a bad file (SchemaError is a ValueError): keep the routes we have
            self._key = (st.st_mtime_ns, self._key[1] if self._key is not None else ())
            return
        if snap is None:
            return
        nodes = nodes_from_views(snap.nodes, exclude=self.worker_id)
        key = (st.st_mtime_ns, nodes)
        if self._key is None or self._key[1] != nodes:
            self.router = Router(RoutingConfig(nodes=nodes), backend_for)
            self.name = f"router({len(nodes)} nodes)"
        self._key = key

    def generate(self, model: str, prompt: str, **kw: Any) -> GenerationResult:
        self.refresh()
        return super().generate(model, prompt, **kw)
