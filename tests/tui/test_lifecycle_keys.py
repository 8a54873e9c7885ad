"""Stale means stale (keys ask before sending), worker start/restart, task cancel, the exact
unload confirmation, the remembered theme, the top bar's pid/uptime and the 80-column footer."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from tuikit import app_for, canned, make_app, press_and_read, screen_text, wait_ready

from engine.commands import CommandKind
from galaxy_tui.actions import unload_plan
from galaxy_tui.prefs import load_theme


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def sent(sink):  # type: ignore[no-untyped-def]
    return [(c.kind, c.target) for c in sink.sent]


# ---- stale ----
@pytest.mark.parametrize("how", ["old snapshot", "pid gone"])
def test_stale_keys_ask_and_enter_cancels(how: str) -> None:
    snap = canned("busy5")
    kw = {"clock_offset": 42.0} if how == "old snapshot" else {"supervisor_alive": False}
    app, sink = app_for(snap, **kw)  # type: ignore[arg-type]
    text, screen, focused = run(press_and_read(app, ["down", "p"]))
    assert screen == "ConfirmScreen" and focused == "cancel" and sink.sent == []
    assert "No supervisor is running; send anyway?" in text
    app, sink = app_for(snap, **kw)  # type: ignore[arg-type]
    run(press_and_read(app, ["down", "p", "enter"]))
    assert sink.sent == []


def test_stale_send_anyway_sends() -> None:
    app, sink = app_for(canned("busy5"), clock_offset=42.0)
    run(press_and_read(app, ["down", "p", "tab", "enter"]))
    assert sent(sink) == [(CommandKind.PAUSE, "w1")]


def test_stale_after_a_confirmed_question_asks_again_then_sends() -> None:
    app, sink = app_for(canned("busy5"), clock_offset=42.0)
    said, screen, _ = run(press_and_read(app, ["u", "tab", "enter"]))  # yes to the unload question
    assert screen == "ConfirmScreen" and said.startswith("No supervisor is running") and sink.sent == []
    app, sink = app_for(canned("busy5"), clock_offset=42.0)
    run(press_and_read(app, ["u", "tab", "enter", "tab", "enter"]))
    assert sent(sink) == [(CommandKind.UNLOAD, "w0")]


def test_stale_approval_also_asks() -> None:
    app, sink = app_for(canned("escalation"), clock_offset=42.0)
    _, screen, _ = run(press_and_read(app, ["e", "a"]))
    assert screen == "ConfirmScreen" and sink.sent == []


# ---- start / restart ----
def fatal_and_stopped():  # type: ignore[no-untyped-def]
    snap = canned("busy5")
    workers = list(snap.workers)
    workers[4] = replace(workers[4], state="fatal", state_reason="fatal: 5 crashes in 30s")
    workers[2] = replace(workers[2], state="stopped", state_reason="drained (exit code 0); 'resume' starts it again")
    return replace(snap, workers=tuple(workers))


@pytest.mark.parametrize("downs,worker", [(4, "w4"), (2, "w2")])
def test_s_starts_a_fatal_or_stopped_worker_with_resume(downs: int, worker: str) -> None:
    app, sink = app_for(fatal_and_stopped())
    run(press_and_read(app, ["down"] * downs + ["s"]))
    assert sent(sink) == [(CommandKind.RESUME, worker)]


def test_p_on_a_fatal_worker_sends_nothing_and_points_at_s() -> None:
    app, sink = app_for(fatal_and_stopped())
    text, _, _ = run(press_and_read(app, ["down"] * 4 + ["p"]))
    assert sink.sent == [] and "press s to start it" in text


def test_s_on_a_busy_worker_asks_says_the_task_is_interrupted_then_restarts() -> None:
    app, sink = make_app("busy5")
    text, screen, focused = run(press_and_read(app, ["s"]))
    assert screen == "ConfirmScreen" and focused == "cancel" and sink.sent == []
    assert "summarize-report-0412 is interrupted" in text
    app, sink = make_app("busy5")
    run(press_and_read(app, ["s", "tab", "enter"]))
    assert sent(sink) == [(CommandKind.RESTART, "w0")]


# ---- cancel ----
def test_c_cancels_the_selected_gpus_task_after_asking() -> None:
    app, sink = make_app("busy5")
    text, screen, focused = run(press_and_read(app, ["c"]))
    assert screen == "ConfirmScreen" and focused == "cancel" and "Cancel task summarize-report-0412" in text
    app, sink = make_app("busy5")
    run(press_and_read(app, ["c", "enter"]))
    assert sink.sent == []
    app, sink = make_app("busy5")
    run(press_and_read(app, ["c", "tab", "enter"]))
    assert sent(sink) == [(CommandKind.CANCEL, "t-summarize-report-0412")]


def test_c_on_a_finished_task_sends_nothing() -> None:
    app, sink = make_app("busy5")
    _, screen, _ = run(press_and_read(app, ["tab", "down", "down", "down", "c"], size=(120, 40)))  # a done row
    assert screen != "ConfirmScreen" and sink.sent == []


# ---- unload says exactly what happens ----
def test_unload_with_no_model_sends_nothing() -> None:
    app, sink = make_app("busy5")
    text, screen, _ = run(press_and_read(app, ["down"] * 4 + ["u"]))  # GPU 4: idle, no model
    assert screen != "ConfirmScreen" and sink.sent == [] and "nothing to unload" in text


def test_unload_on_a_generating_card_says_the_task_is_interrupted() -> None:
    app, _ = make_app("busy5")
    text, screen, _ = run(press_and_read(app, ["u"]))
    assert screen == "ConfirmScreen" and "summarize-report-0412 is generating on it: it is interrupted" in text


def test_unload_on_a_script_card_says_nothing_is_interrupted() -> None:
    app, sink = make_app("busy5")
    text, screen, _ = run(press_and_read(app, ["down"] * 3 + ["u"]))  # GPU 3: script_busy, transcribe-standup
    assert screen == "ConfirmScreen" and "Task transcribe-standup keeps running" in text
    assert "Nothing is interrupted" in text and sink.sent == []


def test_unload_plan_rules() -> None:
    snap = canned("busy5")
    w, g = snap.workers, snap.gpus
    assert unload_plan(w[4], g[4]).nothing
    assert unload_plan(replace(w[0], state="stopped"), g[0]).nothing
    assert unload_plan(w[2], g[2]).question is None and not unload_plan(w[2], g[2]).nothing  # ready, no task
    assert "interrupted" in (unload_plan(w[1], g[1]).question or "")
    assert "keeps running" in (unload_plan(w[3], g[3]).question or "")
    booting = replace(w[2], residency="booting_llm")
    assert "Nothing is interrupted" in (unload_plan(booting, g[2]).question or "")


# ---- theme, top bar, footer, selection ----
def test_theme_is_remembered_across_runs(tmp_path: Path) -> None:
    prefs = tmp_path / "config" / "galaxy" / "dashboard.toml"
    app, _ = app_for(canned("busy5"), prefs_path=prefs)
    run(press_and_read(app, ["t"]))
    assert load_theme(prefs) == "galaxy-high-contrast"
    app, _ = app_for(canned("busy5"), prefs_path=prefs)

    async def theme_at_start() -> str:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(pilot)
            return app.theme
    assert run(theme_at_start()) == "galaxy-high-contrast"


def test_a_broken_prefs_file_means_the_default(tmp_path: Path) -> None:
    prefs = tmp_path / "dashboard.toml"
    prefs.write_text("theme = [not toml")
    assert load_theme(prefs) is None
    app, _ = app_for(canned("busy5"), prefs_path=prefs)
    assert app.theme == "galaxy-dark"


def test_top_bar_has_pid_and_uptime_and_footer_keeps_help_and_quit_at_80() -> None:
    app, _ = make_app("busy5")
    text, _, _ = run(press_and_read(app, []))
    lines = text.splitlines()
    assert "pid 4242 up 2h00" in lines[0]
    assert "? Help" in lines[-1] and "q Quit" in lines[-1]


def test_selected_gpu_stays_marked_when_tasks_has_focus() -> None:
    async def go():  # type: ignore[no-untyped-def]
        app, _ = make_app("busy5")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(pilot)
            await pilot.press("down", "down", "tab")
            await pilot.pause()
            cards = list(app.query("GpuCard"))
            return [c.has_class("-selected") for c in cards], app.focused.id if app.focused else None, \
                screen_text(app)
    marks, focused, text = run(go())
    assert focused == "tasks" and marks == [False, False, True, False, False]
    card_line = next(line for line in text.splitlines() if "llama3.2:3b" in line)
    assert card_line.startswith("│▌2"), card_line  # the bar reads without colour


def test_every_panel_is_reachable_at_80x24() -> None:
    async def go():  # type: ignore[no-untyped-def]
        app, _ = make_app("escalation")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(pilot)
            seen = []
            for _ in range(6):
                seen.append(app.focused.id if app.focused else None)
                await pilot.press("tab")
                await pilot.pause()
        return set(seen)
    seen = run(go())
    assert {"gpus", "tasks", "escalations", "events"} <= seen, seen


def test_prefs_live_under_the_users_config_dir() -> None:
    from galaxy_tui.prefs import default_prefs_path

    assert default_prefs_path({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}) == Path("/x/cfg/galaxy/dashboard.toml")
    assert default_prefs_path({"HOME": "/h"}) == Path("/h/.config/galaxy/dashboard.toml")
