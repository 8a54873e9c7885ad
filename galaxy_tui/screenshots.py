"""Screenshots of the real app for the operator guide: canned snapshots and, optionally, a live rig.

``python -m galaxy_tui.screenshots --out docs/img [--live ROOT] [--skip-canned]``
Canned pictures use the fixture snapshots with the clock frozen at their ``taken_at``.
``--live ROOT`` attaches the real dashboard (what ``galaxy attach`` runs) to a supervisor
already running on ROOT and shoots once the rig is busy: at least ``--min-running`` workers
with a task and, with ``--want-tokens``, one of them reporting tokens/s. Use a tmp root, e.g.

    galaxy --root /tmp/rig submit /tmp/rig/plans/video.md
    galaxy --root /tmp/rig supervise --sim &
    python -m galaxy_tui.screenshots --skip-canned --live /tmp/rig --want-tokens
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from textual.pilot import Pilot

from engine.commands import RecordingCommandSink
from engine.snapshot import Snapshot
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
    ("escalation-80x24", "escalation", (80, 24), (), "galaxy-dark", False),
    ("review-80x24", "escalation", (80, 24), ("e",), "galaxy-dark", False),
    ("review-120x40", "escalation", (120, 40), ("e",), "galaxy-dark", False),
    ("review-over-budget", "escalation", (80, 24), ("e", "o"), "galaxy-dark", False),
    ("markup-80x24", "markup", (80, 24), (), "galaxy-dark", False),
    ("eight-gpus", "eight", (120, 40), (), "galaxy-dark", False),
    ("cluster-120x40", "cluster", (120, 40), (), "galaxy-dark", False),
    ("cluster-80x24", "cluster", (80, 24), ("g",), "galaxy-dark", False),
    ("high-contrast", "hot", (120, 40), (), "galaxy-high-contrast", False),
    ("read-only", "busy5", (80, 24), (), "galaxy-dark", True),
    ("confirm-unload", "busy5", (80, 24), ("u",), "galaxy-dark", False),
    ("help", "busy5", (100, 34), ("question_mark",), "galaxy-dark", False),
    ("events-80x24", "busy5", (80, 24), ("l", "f"), "galaxy-dark", False),
    ("task-detail-120x40", "busy5", (120, 40), ("tab", "enter"), "galaxy-dark", False),
    ("task-detail-80x24", "busy5", (80, 24), ("tab", "enter"), "galaxy-dark", False),
)


def _clock_of(snap: Snapshot) -> Callable[[], float]:
    """The dashboard's clock stopped at the moment the canned snapshot was taken."""
    return lambda: snap.taken_at


async def _settle(app: GalaxyApp, pilot: Pilot[None], keys: Sequence[str]) -> None:
    for _ in range(3000):  # up to 30 s: the first reading comes from the app's reader thread
        await app.workers.wait_for_complete()
        if app.snapshot is not None:
            break
        await pilot.pause(0.01)
    for key in keys:
        await pilot.press(key)
        await pilot.pause()
    await pilot.pause(0.3)


async def canned(out: Path, only: Sequence[str] = ()) -> list[Path]:
    written = []
    for name, fixture, size, keys, theme, read_only in CANNED:
        if only and name not in only:
            continue
        snap = load_snapshot_file(FIXTURES / f"{fixture}.json")
        app = GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), read_only=read_only,
                        clock=_clock_of(snap), theme=theme)
        async with app.run_test(size=size) as pilot:
            await _settle(app, pilot, keys)
            path = out / f"{name}.svg"
            path.write_text(app.export_screenshot(title=f"galaxy: {name}"))
            written.append(path)
    return written


def _busy(snap: Snapshot | None, min_running: int, want_tokens: bool) -> bool:
    """Worth a picture: enough workers on a task and (optionally) an LLM streaming."""
    if snap is None:
        return False
    running = [w for w in snap.workers if w.current_task]
    if len(running) < min_running:
        return False
    return not want_tokens or any(w.tokens_per_s for w in running)


async def live(out: Path, root: Path, shots: Sequence[tuple[str, tuple[int, int]]], *,
               min_running: int = 0, want_tokens: bool = False, wait_s: float = 120.0) -> list[Path]:
    """One attached dashboard; for each (name, size): resize, wait for a busy moment, shoot."""
    app = make_dashboard(root)
    written = []
    async with app.run_test(size=shots[0][1]) as pilot:
        await _settle(app, pilot, ())
        for name, (width, height) in shots:
            await pilot.resize_terminal(width, height)
            await pilot.pause(0.2)
            deadline = time.monotonic() + wait_s
            while not _busy(app.snapshot, min_running, want_tokens):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{root}: the rig never got busy enough in {wait_s:.0f}s "
                                     f"(min_running={min_running}, want_tokens={want_tokens})")
                await pilot.pause(0.1)
            await pilot.pause(0.2)  # let the panels repaint from that snapshot
            path = out / f"{name}.svg"
            path.write_text(app.export_screenshot(title=f"galaxy: {name}"))
            written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--live", "--live-root", dest="live_root", type=Path, default=None,
                    help="also shoot the dashboard attached to the supervisor running on this root")
    ap.add_argument("--min-running", type=int, default=3, help="--live: wait for this many busy workers")
    ap.add_argument("--want-tokens", action="store_true", help="--live: wait for a worker reporting tokens/s")
    ap.add_argument("--wait", type=float, default=120.0, help="--live: give up after this many seconds")
    ap.add_argument("--live-name", default="live-sim")
    ap.add_argument("--skip-canned", action="store_true")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="shoot only this canned picture (repeatable), e.g. --only review-80x24")
    args = ap.parse_args()
    os.environ.setdefault("TZ", "UTC")
    time.tzset()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.skip_canned:
        for p in asyncio.run(canned(args.out, args.only)):
            print(p)
    if args.live_root is not None:
        shots = [(args.live_name, (120, 40)), (args.live_name + "-80x24", (80, 24))]
        for p in asyncio.run(live(args.out, args.live_root.resolve(), shots, min_running=args.min_running,
                                  want_tokens=args.want_tokens, wait_s=args.wait)):
            print(p)


if __name__ == "__main__":
    main()
