"""Pilot tests: each key sends exactly the right command; read-only sends none; confirmations default to Cancel."""

from __future__ import annotations

import asyncio

from tuikit import make_app, wait_ready

from engine.commands import CommandKind
from galaxy_tui.screens.confirm import ConfirmScreen, ReasonScreen


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def sent(sink):  # type: ignore[no-untyped-def]
    return [(c.kind, c.target) for c in sink.sent]


async def _press(name: str, keys: list[str], *, read_only: bool = False, size=(120, 40)):  # type: ignore[no-untyped-def]
    app, sink = make_app(name, read_only=read_only)
    async with app.run_test(size=size) as pilot:
        await wait_ready(pilot)
        for k in keys:
            await pilot.press(k)
            await pilot.pause()
        screen = type(app.screen).__name__
    return sink, screen


def test_pause_sends_pause_for_the_selected_worker() -> None:
    sink, _ = run(_press("busy5", ["down", "p"]))
    assert sent(sink) == [(CommandKind.PAUSE, "w1")]
    assert sink.sent[0].source.startswith("tui ")


def test_p_on_a_paused_worker_sends_resume() -> None:
    sink, _ = run(_press("failed", ["down", "p"]))  # w1 is paused in this fixture
    assert sent(sink) == [(CommandKind.RESUME, "w1")]


def test_drain_sends_drain() -> None:
    sink, _ = run(_press("busy5", ["down", "down", "x"]))
    assert sent(sink) == [(CommandKind.DRAIN, "w2")]


def test_unload_on_an_idle_worker_sends_at_once() -> None:
    sink, _ = run(_press("busy5", ["down", "down", "u"]))  # w2: model resident, no task
    assert sent(sink) == [(CommandKind.UNLOAD, "w2")]


def test_unload_with_a_running_task_asks_and_enter_cancels() -> None:
    sink, screen = run(_press("busy5", ["u"]))
    assert screen == "ConfirmScreen" and sink.sent == []
    sink, screen = run(_press("busy5", ["u", "enter"]))  # Cancel is focused: Enter cancels
    assert screen != "ConfirmScreen" and sink.sent == []


def test_unload_with_a_running_task_confirmed_sends_unload() -> None:
    sink, _ = run(_press("busy5", ["u", "tab", "enter"]))  # move to "Unload", press it
    assert sent(sink) == [(CommandKind.UNLOAD, "w0")]


def test_retry_sends_retry_for_the_selected_failed_task() -> None:
    # Tasks: 3 running rows, then the failed ones; select the second failed task.
    sink, _ = run(_press("failed", ["tab", "down", "down", "down", "down", "r"]))
    assert sent(sink) == [(CommandKind.RETRY, "t-summarize-big")]


def test_retry_on_a_running_task_sends_nothing() -> None:
    sink, _ = run(_press("failed", ["tab", "r"]))
    assert sink.sent == []


def test_retry_all_asks_with_the_count_and_defaults_to_cancel() -> None:
    async def go():  # type: ignore[no-untyped-def]
        app, sink = make_app("failed")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            await pilot.press("R")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            assert "3 failed" in app.screen.question
            assert app.focused is not None and app.focused.id == "cancel"
            await pilot.press("enter")
            await pilot.pause()
            assert sink.sent == []
            await pilot.press("R", "tab", "enter")
            await pilot.pause()
        return sink
    sink = run(go())
    assert sent(sink) == [(CommandKind.RETRY_ALL_FAILED, None)]


def test_approve_sends_approve_for_the_pending_escalation() -> None:
    sink, screen = run(_press("escalation", ["a"]))  # the panel has no focus: a opens the review first
    assert screen == "ReviewScreen" and sink.sent == []
    sink, _ = run(_press("escalation", ["tab", "tab", "a"]))  # focus on the Escalations panel
    assert sent(sink) == [(CommandKind.APPROVE, "esc-91c2")]


def test_approve_on_a_decided_escalation_sends_nothing() -> None:
    # The main panel lists pending ones only; the decided one is reached from E's "Decided" tab.
    sink, screen = run(_press("escalation", ["E", "tab", "enter", "a", "o"]))
    assert screen == "ReviewScreen" and sink.sent == []


def test_deny_asks_for_a_reason_and_sends_it() -> None:
    async def go():  # type: ignore[no-untyped-def]
        app, sink = make_app("escalation")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            await pilot.press("d", "d")  # the first opens the review (the panel has no focus); there, d denies
            await pilot.pause()
            assert isinstance(app.screen, ReasonScreen)
            await pilot.press("enter")  # empty reason: refused, nothing sent
            await pilot.pause()
            assert sink.sent == [] and isinstance(app.screen, ReasonScreen)
            await pilot.press(*"contains client names", "enter")
            await pilot.pause()
        return sink
    sink = run(go())
    assert sent(sink) == [(CommandKind.DENY, "esc-91c2")]
    assert sink.sent[0].args == {"reason": "contains client names"}


def test_deny_escape_sends_nothing() -> None:
    sink, _ = run(_press("escalation", ["d", "escape"]))
    assert sink.sent == []


def test_read_only_sends_nothing_for_any_key() -> None:
    keys = ["p", "x", "down", "down", "u", "R", "tab", "enter", "a", "d", "tab", "enter"]
    for name in ("busy5", "failed", "escalation"):
        sink, _ = run(_press(name, keys, read_only=True))
        assert sink.sent == [], name


def test_quit_sends_nothing_and_exits() -> None:
    async def go():  # type: ignore[no-untyped-def]
        app, sink = make_app("busy5")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(pilot)
            await pilot.press("q")
            await pilot.pause()
            running = app.is_running
        return sink, running
    sink, running = run(go())
    assert sink.sent == [] and not running


def test_enter_on_a_task_opens_its_detail() -> None:
    _, screen = run(_press("failed", ["tab", "enter"]))
    assert screen == "TaskDetailScreen"


def test_help_and_theme_switch() -> None:
    async def go():  # type: ignore[no-untyped-def]
        app, sink = make_app("busy5")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(pilot)
            assert app.theme == "galaxy-dark"
            await pilot.press("t")
            await pilot.pause()
            theme = app.theme
            await pilot.press("question_mark")
            await pilot.pause()
            screen = type(app.screen).__name__
        return theme, screen, sink
    theme, screen, sink = run(go())
    assert theme == "galaxy-high-contrast" and screen == "HelpScreen" and sink.sent == []


def test_the_selection_stays_on_its_card_when_a_card_above_it_goes() -> None:
    from dataclasses import replace

    from tuikit import canned

    from galaxy_tui.source import SnapshotReading

    async def go():  # type: ignore[no-untyped-def]
        app, sink = make_app("busy5")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            await pilot.press("down", "down")  # gpu 2, worker w2
            await pilot.pause()
            snap = canned("busy5")
            app.apply_reading(SnapshotReading(replace(snap, gpus=snap.gpus[1:])))  # gpu 0 fell off the bus
            await pilot.pause()
            await pilot.press("x")
            await pilot.pause()
        return sink
    assert sent(run(go())) == [(CommandKind.DRAIN, "w2")]
