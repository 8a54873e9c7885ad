"""Screenshots of the real app for the operator guide: canned snapshots and, optionally, a live rig.

``python -m galaxy_tui.screenshots --out docs/img [--live-root shared]``
Canned pictures use the fixture snapshots with the clock frozen at their ``taken_at``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Sequence

from engine.commands import RecordingCommandSink
from galaxy_tui.app import GalaxyApp
from galaxy_tui.launch import make_dashboard
from galaxy_tui.source import CannedSnapshotSource, load_snapshot_file

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "tui" / "fixtures"

# (output name, fixture, size, keys pressed first, theme, read_only)
CANNED: tuple[tuple[str, str, tuple[int, int], tuple[str, ...], str, bool], ...] = (
    ("busy-120x40", "busy5", (120, 40), (), "galaxy-dark", False),
    ("busy-80x24", "busy5", (80, 24), (), "galaxy-dark", False),
    ("hot-alert", "hot", (120, 40), (), "galaxy-dark", False),
    ("failed-tasks", "failed", (120, 40), ("tab", "down", "down", "down"), "galaxy-dark", False),
    ("escalation", "escalation", (120, 40), (), "galaxy-dark", False),
    ("eight-gpus", "eight", (120, 40), (), "galaxy-dark", False),
    ("high-contrast", "hot", (120, 40), (), "galaxy-high-contrast", False),
    ("read-only", "busy5", (80, 24), (), "galaxy-dark", True),
    ("confirm-unload", "busy5", (80, 24), ("u",), "galaxy-dark", False),
    ("help", "busy5", (100, 34), ("question_mark",), "galaxy-dark", False),
)


async def _settle(app: GalaxyApp, pilot, keys: Sequence[str]) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if app.snapshot is not None:
            break
    for key in keys:
        await pilot.press(key)
        await pilot.pause()
    await pilot.pause(0.3)


async def canned(out: Path) -> list[Path]:
    written = []
    for name, fixture, size, keys, theme, read_only in CANNED:
        snap = load_snapshot_file(FIXTURES / f"{fixture}.json")
        app = GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), read_only=read_only,
                        clock=lambda s=snap: s.taken_at, theme=theme)
        async with app.run_test(size=size) as pilot:
            await _settle(app, pilot, keys)
            path = out / f"{name}.svg"
            path.write_text(app.export_screenshot(title=f"galaxy: {name}"))
            written.append(path)
    return written


async def live(out: Path, root: Path, name: str, size: tuple[int, int]) -> Path:
    app = make_dashboard(root)
    async with app.run_test(size=size) as pilot:
        await _settle(app, pilot, ())
        await pilot.pause(1.0)
        path = out / f"{name}.svg"
        path.write_text(app.export_screenshot(title=f"galaxy: {name}"))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--live-root", type=Path, default=None, help="also shoot the rig running on this root")
    ap.add_argument("--live-name", default="live-sim")
    ap.add_argument("--skip-canned", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TZ", "UTC")
    time.tzset()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.skip_canned:
        for p in asyncio.run(canned(args.out)):
            print(p)
    if args.live_root is not None:
        for size, suffix in (((120, 40), ""), ((80, 24), "-80x24")):
            print(asyncio.run(live(args.out, args.live_root.resolve(), args.live_name + suffix, size)))


if __name__ == "__main__":
    main()
