"""Nodes: anything that serves an LLM (a GPU group's Ollama, a vLLM box, a cloud API).

Tiers are declared by the operator (the design notes: "user assigns tier"), never
inferred from hardware. A node marked ``external`` is reachable only through an
approved escalation: the router never sends to it on its own.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import safeio

MAX_CONFIG_BYTES = 1_000_000  # galaxy.toml (engine.config has the same limit)
BACKENDS = ("ollama", "openai", "anthropic")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class NodeConfigError(ValueError):
    pass


@dataclass(frozen=True)
class NodeConfig:
    name: str
    endpoint: str
    backend: str  # ollama | openai | anthropic
    model: str
    tier: int
    context_window: int = 8192  # tokens
    max_concurrency: int = 1
    auth_env: str | None = None  # name of the environment variable holding the token/key
    external: bool = False  # leaves the rig: only after operator approval
    price_in_per_mtok: float = 0.0  # USD per million input tokens
    price_out_per_mtok: float = 0.0

    def auth_token(self) -> str | None:
        return os.environ.get(self.auth_env) if self.auth_env else None


@dataclass(frozen=True)
class RoutingConfig:
    nodes: tuple[NodeConfig, ...] = ()
    breaker_failures: int = 3  # consecutive failures that open a breaker
    breaker_reset_s: float = 30.0  # first wait before a half-open probe (doubles, capped)
    breaker_reset_max_s: float = 600.0
    health_interval_s: float = 10.0
    request_timeout_s: float = 120.0
    long_prompt_tokens: int = 2000  # complexity signal: >= this is at least MEDIUM
    very_long_prompt_tokens: int = 6000  # >= this is COMPLEX


@dataclass(frozen=True)
class EscalationConfig:
    after_local_failures: int = 2
    approval_timeout_s: float = 3600.0
    on_timeout: str = "deny"  # deny | retry_local
    daily_budget_usd: float = 5.0
    max_output_tokens: int = 1024
    retention_days: float = 7.0  # decided escalation files older than this are removed (the cost ledger stays)
    extra: dict[str, Any] = field(default_factory=dict)


def _node_from(d: dict[str, Any], where: str) -> NodeConfig:
    known = set(NodeConfig.__dataclass_fields__)
    unknown = set(d) - known
    if unknown:
        raise NodeConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    for key in ("name", "endpoint", "backend", "model", "tier"):
        if key not in d:
            raise NodeConfigError(f"{where}: missing key {key!r}")
    if not isinstance(d["name"], str) or not _NAME_RE.match(d["name"]):
        raise NodeConfigError(f"{where}: name {d['name']!r} must be letters, digits, '_', '-', '.'")
    if d["backend"] not in BACKENDS:
        raise NodeConfigError(f"{where}: backend {d['backend']!r} is not one of {', '.join(BACKENDS)}")
    if not isinstance(d["tier"], int) or isinstance(d["tier"], bool) or d["tier"] < 0:
        raise NodeConfigError(f"{where}: tier must be a non-negative integer, got {d['tier']!r}")
    if not str(d["endpoint"]).startswith(("http://", "https://")):
        raise NodeConfigError(f"{where}: endpoint {d['endpoint']!r} must start with http:// or https://")
    if d["backend"] == "anthropic" and not d.get("external"):
        raise NodeConfigError(f"{where}: an anthropic node is a cloud API: set external = true (--external)")
    try:
        return NodeConfig(**d)
    except TypeError as exc:
        raise NodeConfigError(f"{where}: {exc}") from None


def parse_routing(data: dict[str, Any], where: str = "galaxy.toml") -> tuple[RoutingConfig, EscalationConfig]:
    """Read ``[[node]]``, ``[routing]`` and ``[escalation]`` from a parsed galaxy.toml."""
    raw_nodes = data.get("node", [])
    if not isinstance(raw_nodes, list):
        raise NodeConfigError(f"{where}: [[node]] must be an array of tables")
    nodes = tuple(_node_from(n, f"{where}: node #{i + 1}") for i, n in enumerate(raw_nodes))
    names = [n.name for n in nodes]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise NodeConfigError(f"{where}: duplicate node name(s): {', '.join(sorted(dupes))}")
    routing_raw = dict(data.get("routing", {}))
    escalation_raw = dict(data.get("escalation", {}))
    for table, raw, known in (("routing", routing_raw, set(RoutingConfig.__dataclass_fields__) - {"nodes"}),
                              ("escalation", escalation_raw, set(EscalationConfig.__dataclass_fields__) - {"extra"})):
        unknown = set(raw) - known
        if unknown:
            raise NodeConfigError(f"{where}: [{table}]: unknown key(s) {', '.join(sorted(unknown))} "
                                  f"(known: {', '.join(sorted(known))})")
    try:
        routing = RoutingConfig(nodes=nodes, **routing_raw)
    except TypeError as exc:
        raise NodeConfigError(f"{where}: [routing]: {exc}") from None
    try:
        escalation = EscalationConfig(**escalation_raw)
    except TypeError as exc:
        raise NodeConfigError(f"{where}: [escalation]: {exc}") from None
    if escalation.on_timeout not in ("deny", "retry_local"):
        raise NodeConfigError(f"{where}: [escalation] on_timeout must be 'deny' or 'retry_local'")
    if not isinstance(escalation.retention_days, (int, float)) or escalation.retention_days <= 0:
        raise NodeConfigError(f"{where}: [escalation] retention_days must be a number of days > 0, "
                              f"not {escalation.retention_days!r}")
    return routing, escalation


def load_routing(config_path: Path | None) -> tuple[RoutingConfig, EscalationConfig]:
    if config_path is None or not Path(config_path).exists():
        return RoutingConfig(), EscalationConfig()
    try:  # the bounded reader (engine.safeio), as for the rest of galaxy.toml
        data = tomllib.loads(safeio.read_text(config_path, MAX_CONFIG_BYTES, follow_symlinks=True))
    except safeio.UnsafeFileError as exc:
        raise NodeConfigError(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise NodeConfigError(f"{config_path}: {exc}") from None
    except RecursionError:
        raise NodeConfigError(f"{config_path}: not valid TOML: nested too deep") from None
    return parse_routing(data, str(config_path))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def append_node(config_path: Path, node: NodeConfig) -> None:
    """Append a ``[[node]]`` table; appending keeps the operator's comments and layout."""
    existing = load_routing(config_path)[0].nodes if Path(config_path).exists() else ()
    if any(n.name == node.name for n in existing):
        raise NodeConfigError(f"{config_path}: a node named {node.name!r} already exists")
    defaults = NodeConfig(name="", endpoint="", backend="", model="", tier=0)
    lines = ["", "[[node]]"]
    for key in NodeConfig.__dataclass_fields__:
        value = getattr(node, key)
        if key in ("name", "endpoint", "backend", "model", "tier") or value != getattr(defaults, key):
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
    with open(config_path, "a") as fh:
        fh.write("\n".join(lines) + "\n")


def remove_node(config_path: Path, name: str) -> bool:
    """Delete the ``[[node]]`` table whose name is ``name``; other text stays as it was."""
    try:  # never a FIFO or device, never without bound
        text = safeio.read_text(config_path, MAX_CONFIG_BYTES, follow_symlinks=True)
    except safeio.UnsafeFileError as exc:
        raise NodeConfigError(str(exc)) from None
    blocks = re.split(r"(?m)^(?=\[)", text)
    kept, removed = [], False
    for block in blocks:
        if block.startswith("[[node]]") and re.search(rf'(?m)^\s*name\s*=\s*"{re.escape(name)}"\s*$', block):
            removed = True
            continue
        kept.append(block)
    if removed:
        new_text = "".join(kept)
        tomllib.loads(new_text)  # never write a file we cannot read back
        Path(config_path).write_text(new_text)
    return removed
