"""Layout snapshots (pytest-textual-snapshot) from canned snapshots, clock frozen at taken_at.

Update after an intended change: ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from dataclasses import replace

from tuikit import canned, make_app, wait_ready

from engine.commands import RecordingCommandSink
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource


def test_busy_five_gpu_rig_120x40(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("busy5")
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait_ready)


def test_busy_five_gpu_rig_fits_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("busy5")
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_ready)


def test_hot_card_with_alert_banner(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("hot")
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait_ready)


def test_hot_card_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("hot")
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_ready)


def test_failed_tasks_and_paused_worker(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("failed")
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait_ready)


def test_pending_escalation_with_preview(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("escalation")
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait_ready)


def test_eight_gpus_at_120x40(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("eight")
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait_ready)


def test_read_only_is_marked(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("busy5", read_only=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_ready)


def test_stale_snapshot_is_marked(snap_compare) -> None:  # type: ignore[no-untyped-def]
    snap = canned("busy5")
    app = GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at + 42)
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_ready)


def test_high_contrast_theme(snap_compare) -> None:  # type: ignore[no-untyped-def]
    snap = canned("hot")
    app = GalaxyApp(CannedSnapshotSource([replace(snap)]), RecordingCommandSink(), clock=lambda: snap.taken_at,
                    theme="galaxy-high-contrast")
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait_ready)


def test_unload_confirmation_focuses_cancel(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("busy5")

    async def ask(pilot):  # type: ignore[no-untyped-def]
        await wait_ready(pilot)
        await pilot.press("u")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=ask)


def test_pending_escalation_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("escalation")
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_ready)


def test_markup_laden_names_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("markup")
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_ready)


def test_markup_laden_names_at_120x40(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("markup")
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait_ready)


def _press(*keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_ready(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
    return run_before


def test_escalation_review_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("markup")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_press("e"))


def test_escalation_review_at_120x40(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("escalation")
    assert snap_compare(app, terminal_size=(120, 40), run_before=_press("e"))


def test_stale_key_asks_before_sending_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    snap = canned("busy5")
    app = GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at + 42)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_press("down", "p"))


def test_selected_gpu_and_failure_reason_with_tasks_focused_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = make_app("markup")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_press("down", "down", "tab", "down", "down", "down"))
