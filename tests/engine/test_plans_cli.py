"""`galaxy plan check` / `galaxy plan show` through the real argument parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_check_ok_example_plan(capsys, tmp_path):
    rc, out, err = run(capsys, "--root", str(tmp_path), "plan", "check", str(REPO / "shared/plans/video.md"))
    assert rc == 0 and err == ""
    assert out.strip().endswith("ok, 10 tasks (3 embed, 3 llm, 1 shell, 3 transcribe)")
    assert list(tmp_path.iterdir()) == []  # no side effects: nothing created under the root


def test_check_prints_every_error_with_its_line_and_exits_1(capsys, tmp_path):
    plan = tmp_path / "bad.md"
    plan.write_text("## a\n- command: ls\n- depends_on: a\n## b\n- priority: 99\n- command: x\n")
    rc, out, err = run(capsys, "--root", str(tmp_path), "plan", "check", str(plan))
    assert rc == 1 and out == ""
    assert err.splitlines() == [
        f"{plan}:3: task 'a' depends on itself",
        f"{plan}:5: priority must be 1-10, got 99",
        f"{plan}:2 errors; nothing would be queued".replace(":2 errors", ": 2 errors"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.md"]


def test_check_shows_autofix_notes(capsys, tmp_path):
    plan = tmp_path / "fix.md"
    plan.write_text("## t\n- command: python embed_all.py\n")
    rc, out, _ = run(capsys, "plan", "check", str(plan))
    assert rc == 0
    assert out.splitlines()[0] == (f"{plan}:1: note: task 't': task_class missing; inferred 'script' "
                                   "from the command's keywords")


def test_check_finds_plans_under_the_root(capsys, tmp_path):
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.md").write_text("## a\n- class: cpu\n- command: true\n")
    rc, out, _ = run(capsys, "--root", str(tmp_path), "plan", "check", "plans/p.md")
    assert rc == 0 and "ok, 1 task (1 shell)" in out


def test_check_missing_file(capsys, tmp_path):
    rc, _, err = run(capsys, "--root", str(tmp_path), "plan", "check", str(tmp_path / "nope.md"))
    assert rc == 1 and "nope.md:1: cannot read plan" in err


def test_show_table_and_json(capsys):
    rc, out, _ = run(capsys, "plan", "show", str(REPO / "shared/plans/hello.md"))
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CLASS", "PRI", "MODEL", "LINE", "WAITS", "FOR"]
    assert any(line.startswith("wrap up") and "count letters[alpha]" in line for line in lines)
    rc, out, _ = run(capsys, "plan", "show", "--json", str(REPO / "shared/plans/hello.md"))
    records = json.loads(out)
    assert rc == 0 and next(r["name"] for r in records) == "greet"
    assert records[1]["depends_on"] == [records[0]["task_id"]]


def test_plan_without_action_prints_help(capsys):
    rc, out, _ = run(capsys, "plan")
    assert rc == 2 and "check" in out
