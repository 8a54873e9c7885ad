"""``galaxy config show [--json]``: the effective config and where each value came from."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="show the effective configuration and where each value came from")
    verbs = p.add_subparsers(dest="config_verb", metavar="VERB")
    show = verbs.add_parser("show", help="every setting, with file:line, default, or the flag/env that set it")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    show.add_argument("--sim", action="store_true", help="default groups for the simulated rig")
    show.set_defaults(func=run_show)
    p.set_defaults(func=run_show, json=False, sim=False)


def run_show(args: argparse.Namespace) -> int:
    from engine.config import ConfigError, load_config
    from engine.config_locate import config_candidates
    from engine.config_show import effective_values, render_text

    try:
        cfg = load_config(args.config, gpu_count=_gpu_count(args.sim))
    except ConfigError as exc:
        for one in exc.errors:
            print(f"galaxy config: {one}", file=sys.stderr)
        return 2
    how = getattr(args, "config_how", "--config")
    values = effective_values(cfg, root=args.root, root_how=getattr(args, "root_how", "--root"), config_how=how)
    if args.json:
        import os
        from pathlib import Path

        searched = [{"path": str(c.path), "how": c.how, "exists": bool(c.path and c.path.is_file())}
                    for c in config_candidates(None, os.environ, Path.cwd())]
        print(json.dumps({"config": str(cfg.source) if cfg.source else None, "config_found_by": how,
                          "origin": cfg.origin, "root": str(args.root), "searched": searched,
                          "values": [v.to_json() for v in values]}, indent=2, default=str))
        return 0
    print(f"# config: {cfg.source or 'none'} ({how}); {cfg.origin}")
    print(render_text(values))
    return 0


def _gpu_count(sim: bool) -> int:
    """GPUs for the default groups when galaxy.toml has no [[group]] (as the supervisor would see)."""
    from engine.telemetry.detect import detect_probe

    try:
        return int(detect_probe(simulated=sim).status().gpu_count)
    except Exception:  # noqa: BLE001 - no NVML: CPU defaults, as the supervisor would
        return 0
