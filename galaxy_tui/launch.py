"""Run the dashboard against a rig (what ``galaxy up`` and ``galaxy attach`` call): its shared root
(the file store), or its snapshot and command channel in the configured store (Redis)."""

from __future__ import annotations

import gc
from pathlib import Path

from engine.commands import CommandSink, FileCommandSink
from engine.paths import RigPaths
from engine.store.open import Channels
from galaxy_tui.app import GalaxyApp
from galaxy_tui.prefs import default_prefs_path
from galaxy_tui.source import READ_EVERY_S, ClusterSnapshotSource, FileSnapshotSource, SnapshotSource


def make_dashboard(root: Path, *, read_only: bool = False, channels: Channels | None = None,
                   config_path: Path | None = None) -> GalaxyApp:
    """``channels``: the configured store's (None, or the file store: the root's files, read with a stat);
    ``config_path``: the galaxy.toml they came from (the Tasks view and task detail open its store)."""
    paths = RigPaths(root)
    source: SnapshotSource
    sink: CommandSink
    if channels is None or channels.kind == "file":
        source = FileSnapshotSource(paths.snapshot, paths.supervisor_pid, min_interval_s=READ_EVERY_S)
        sink = channels.commands if channels is not None else FileCommandSink(paths.commands)
        return GalaxyApp(source, sink, read_only=read_only, root=root, prefs_path=default_prefs_path(),
                         config_path=config_path)
    # a shared store: every rig in one view, a worker's commands to its own rig's supervisor
    source = ClusterSnapshotSource(channels.snapshots, channels.rig, min_interval_s=READ_EVERY_S)
    return GalaxyApp(source, channels.commands, read_only=read_only, root=root, prefs_path=default_prefs_path(),
                     route=channels.commands_for, home_rig=channels.rig, config_path=config_path)


GC_YOUNG = 20_000  # container allocations between young collections (CPython's default: 700)


def tune_gc() -> None:
    """Fewer garbage collections in the dashboard process. Each frame allocates thousands of
    short-lived strips, segments and styles, so the default threshold ran a young collection
    several times a frame: about a tenth of a busy dashboard's CPU (bench/dashboard_cost.py).
    What is loaded by now (modules, classes, the stylesheet) is frozen out of collections, and
    collections are on (``galaxy attach`` starts with them off: engine/cli/cmd_tui.py)."""
    gc.set_threshold(GC_YOUNG, 10, 10)
    gc.freeze()
    gc.enable()


def run_dashboard(root: Path, *, read_only: bool = False, channels: Channels | None = None,
                  config_path: Path | None = None) -> int:
    app = make_dashboard(root, read_only=read_only, channels=channels, config_path=config_path)
    tune_gc()
    app.run()
    return 0
