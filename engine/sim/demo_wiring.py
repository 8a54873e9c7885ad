"""Wires the live demo into ``galaxy supervise --sim --demo``: the simulated cloud and the feeder.

Kept apart from ``demo.py`` (which only decides what to submit) because this part starts a
loopback server and touches the process environment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.config import GalaxyConfig
from engine.paths import RigPaths
from engine.routing.nodes import NodeConfig
from engine.sim.cloud_api import SIM_CLOUD_KEY, SIM_CLOUD_KEY_ENV, SimulatedCloudApi
from engine.sim.demo import DemoFeeder, DemoQueue, DemoSettings

SIM_CLOUD_NODE = "sim-cloud"
EXAMPLE_PLAN = "video.md"


def with_sim_cloud(config: GalaxyConfig) -> tuple[GalaxyConfig, SimulatedCloudApi]:
    """Start the simulated cloud model and add it as an external node (approval needed, priced
    like a mid-size cloud model), unless galaxy.toml already declares a node of that name."""
    api = SimulatedCloudApi().start()
    os.environ[SIM_CLOUD_KEY_ENV] = SIM_CLOUD_KEY  # this process sends after approval; the key is not a secret
    if any(n.name == SIM_CLOUD_NODE for n in config.routing.nodes):
        return config, api
    node = NodeConfig(name=SIM_CLOUD_NODE, endpoint=api.url, backend="anthropic", model=api.model, tier=3,
                      context_window=200_000, auth_env=SIM_CLOUD_KEY_ENV, external=True,
                      price_in_per_mtok=3.0, price_out_per_mtok=15.0)
    return replace(config, routing=replace(config.routing, nodes=(*config.routing.nodes, node))), api


def example_plan(paths: RigPaths) -> Callable[[float], list[Any]] | None:
    """The example plan (``plans/video.md`` under the root) as a loader, or None when it is absent."""
    path = paths.plans / EXAMPLE_PLAN
    if not path.is_file():
        return None

    def load(now: float) -> list[Any]:
        from engine.plans import load_plan

        return load_plan(Path(path), now=now, source="demo")

    return load


def make_feeder(paths: RigPaths, queue: DemoQueue, log: Callable[..., None],
                settings: DemoSettings | None = None) -> DemoFeeder:
    run_id = time.strftime("demo-%Y%m%d-%H%M%S")
    return DemoFeeder(queue, settings or DemoSettings(), seed=int(time.time()) & 0xFFFF, run_id=run_id,
                      plan=example_plan(paths), log=log)
