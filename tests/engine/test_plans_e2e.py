"""hello.md from plan to results: `galaxy submit`, then a real worker process drains it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_hello_plan_runs_end_to_end_in_dependency_order(tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", str(REPO / "shared/plans/hello.md")]) == 0
    assert "1 queued, 4 waiting on dependencies" in capsys.readouterr().out

    worker = subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root), "worker",
                             "--exit-when-idle"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr

    done = {p.name.split(".", 1)[1].removesuffix(".json"): json.loads(p.read_text())
            for p in (root / "tasks" / "complete").glob("*.json")}
    assert sorted(done) == ["count-letters.alpha", "count-letters.beta", "count-letters.gamma", "greet", "wrap-up"]
    assert done["count-letters.gamma"]["result"]["output_tail"].strip() == "gamma has 5 letters"
    assert done["wrap-up"]["result"]["output_tail"].startswith("batch hello-")
    # the aggregate ran last: after every item it waits for
    started = {k: v["attempts"][-1]["started_at"] for k, v in done.items()}
    ended = {k: v["attempts"][-1]["ended_at"] for k, v in done.items()}
    assert all(started["wrap-up"] >= ended[k] for k in done if k.startswith("count-letters"))
    assert all(started[k] >= ended["greet"] for k in done if k != "greet")
    assert list((root / "tasks" / "failed").glob("*.json")) == []
