"""``galaxy attach`` loads only what its first frame needs (issue 12: first frame under 1 s, most of
it imports). Pinned here, so that a module-level import added on the way cannot silently undo it:
the file store's event and audit channels are opened on first use (engine/store/open.py), the queue
protocol is imported by the CLI only on a store error, the service markers only by up/down, pkgutil
only to list every command, and the Tasks view's queue lister (the file queue, inotify) opens after
the first snapshot is drawn."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"

NOT_BEFORE_FIRST_FRAME = (
    "engine.events", "engine.audit", "engine.queue", "engine.queue.filequeue", "engine.store.open_queue",
    "engine.service", "engine.cli.cmd_status", "pkgutil",
    "galaxy_tui.screens.help", "galaxy_tui.screens.review", "galaxy_tui.screens.task_detail",
    "textual.widgets._text_area", "textual.widgets._markdown",
    "httpx", "psutil", "pynvml", "redis", "filelock", "inotify_simple", "markdown_it",
)

ATTACH = r"""
import os, sys
from pathlib import Path
root, config, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
from engine.cli.main import build_parser, command_module, locate_paths
argv = ["--root", str(root), "--config", str(config), "attach"]
args = build_parser(command_module(argv)).parse_args(argv)
locate_paths(args, os.environ, Path.cwd())
from engine.cli.store_channels import open_cli_channels
channels = open_cli_channels(args)
from galaxy_tui.launch import make_dashboard
app = make_dashboard(args.root, channels=channels, config_path=args.config)
loaded = []
if mode == "first-frame":  # the app runs until its first snapshot is drawn; what is loaded then
    render = type(app)._render_snapshot
    def first(self, snap):
        render(self, snap)
        if not loaded:
            loaded.extend(sys.modules)
            self.exit()
    type(app)._render_snapshot = first
    app.run(headless=True, size=(120, 40))
else:
    loaded.extend(sys.modules)
print(" ".join(sorted(loaded)))
"""


def _loaded(tmp_path: Path, mode: str) -> set[str]:
    root = tmp_path / "root"
    (root / "state").mkdir(parents=True)
    shutil.copy(FIXTURES / "eight.json", root / "state" / "snapshot.json")
    config = tmp_path / "galaxy.toml"
    config.write_text("")  # the file store
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALAXY_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    out = subprocess.run([sys.executable, "-c", ATTACH, str(root), str(config), mode], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.mark.parametrize("mode", ["imports", "first-frame"])
def test_attach_leaves_out_what_its_first_frame_does_not_use(tmp_path: Path, mode: str) -> None:
    loaded = _loaded(tmp_path, mode)
    assert "galaxy_tui.app" in loaded and "engine.snapshot" in loaded  # the path did run
    assert sorted(m for m in NOT_BEFORE_FIRST_FRAME if m in loaded) == []
