"""``galaxy config show``: the effective configuration, each value with where it came from.

A value's source is ``file:line`` when galaxy.toml sets it, ``default`` when it does not, or
the flag/environment variable that chose it (the root and the config path themselves).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import GalaxyConfig
from engine.store.settings import StoreEnvError, effective_store, redact_url


@dataclass(frozen=True)
class ShownValue:
    key: str
    value: Any
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "source": self.source}


def effective_values(cfg: GalaxyConfig, *, root: Path, root_how: str, config_how: str) -> list[ShownValue]:
    """Every setting the rig runs with, in file order of sections."""
    out = [ShownValue("config", str(cfg.source) if cfg.source else None, config_how),
           ShownValue("rig.root", str(root), _root_source(cfg, root_how)),
           _one(cfg, "rig.name", cfg.rig)]
    out += _store_values(cfg, os.environ)
    for section, obj in (("thresholds", cfg.thresholds), ("sim", cfg.sim), ("log", cfg.log)):
        for f in dataclasses.fields(obj):
            out.append(_one(cfg, f"{section}.{f.name}", getattr(obj, f.name)))
    for i, g in enumerate(cfg.groups):
        for f in dataclasses.fields(g):
            out.append(_one(cfg, f"group[{i}].{f.name}", getattr(g, f.name), group_default=cfg.source is None))
    for i, node in enumerate(cfg.routing.nodes):
        for f in dataclasses.fields(node):
            out.append(_one(cfg, f"node[{i}].{f.name}", getattr(node, f.name)))
    for f in dataclasses.fields(cfg.routing):
        if f.name != "nodes":
            out.append(_one(cfg, f"routing.{f.name}", getattr(cfg.routing, f.name)))
    for f in dataclasses.fields(cfg.escalation):
        if f.name != "extra":
            out.append(_one(cfg, f"escalation.{f.name}", getattr(cfg.escalation, f.name)))
    return out


def _store_values(cfg: GalaxyConfig, environ: Mapping[str, str]) -> list[ShownValue]:
    """``[store]`` as the rig runs it: ``$GALAXY_STORE`` over the file; the url without its password."""
    try:
        store = effective_store(cfg.store, environ)
    except StoreEnvError as exc:
        return [ShownValue("store.url", None, f"{exc}")]
    if store.origin.startswith("$"):
        url = ShownValue("store.url", redact_url(store.url) if store.url else None, store.origin)
    else:
        url = _one(cfg, "store.url", redact_url(store.url) if store.url else None)
    return [url, _one(cfg, "store.cluster", store.cluster), _one(cfg, "store.keep_completed_s", store.keep_completed_s)]


def _root_source(cfg: GalaxyConfig, root_how: str) -> str:
    line = cfg.key_lines.get("rig.root")
    if root_how.endswith("[rig] root") and cfg.source is not None and line is not None:
        return f"{cfg.source}:{line}"
    return root_how


def _one(cfg: GalaxyConfig, key: str, value: Any, *, group_default: bool = False) -> ShownValue:
    line = cfg.key_lines.get(key)
    if line is not None and cfg.source is not None:
        source = f"{cfg.source}:{line}"
    elif group_default:
        source = "default (detected hardware)"
    else:
        source = "default"
    return ShownValue(key, _plain(value), source)


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def render_text(values: list[ShownValue]) -> str:
    width = max((len(v.key) for v in values), default=0)
    lines = []
    for v in values:
        shown = "-" if v.value is None else (v.value if isinstance(v.value, str) else repr(v.value))
        lines.append(f"{v.key:<{width}}  {shown}  ({v.source})")
    return "\n".join(lines)
