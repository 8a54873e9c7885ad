"""Run the dashboard against a shared root (what ``galaxy up`` and ``galaxy attach`` call)."""

from __future__ import annotations

from pathlib import Path

from engine.commands import FileCommandSink
from engine.paths import RigPaths
from galaxy_tui.app import GalaxyApp
from galaxy_tui.prefs import default_prefs_path
from galaxy_tui.source import READ_EVERY_S, FileSnapshotSource


def make_dashboard(root: Path, *, read_only: bool = False) -> GalaxyApp:
    paths = RigPaths(root)
    source = FileSnapshotSource(paths.snapshot, paths.supervisor_pid, min_interval_s=READ_EVERY_S)
    return GalaxyApp(source, FileCommandSink(paths.commands), read_only=read_only, root=root,
                     prefs_path=default_prefs_path())


def run_dashboard(root: Path, *, read_only: bool = False) -> int:
    make_dashboard(root, read_only=read_only).run()
    return 0
