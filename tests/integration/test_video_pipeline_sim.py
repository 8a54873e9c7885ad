"""The README's path, end to end: the field notes' video pipeline (``shared/plans/video.md``)
on the simulated 5 x GTX 1060 rig, driven by a real ``galaxy supervise --sim`` process.

Real faster-whisper (tiny.en, CPU) transcribes two committed clips, the simulated Ollama
segments each transcript (its text is lorem-like; what matters is that the transcript went
in as tagged data and the answer came out into the segments file), real
sentence-transformers embeds every segment line, and one aggregate indexes it all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from engine.paths import RigPaths
from engine.snapshot import read_snapshot
from tests.support.speech import HEARD_ENOUGH, heard_share, spoken_sentences

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "shared" / "plans" / "video.md"
CLIPS = ("intro", "cooling")  # two of video.md's clips (make_clips.sh says what each speaks)
PIPELINE_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 60.0
SPOKEN = spoken_sentences()

pytestmark = pytest.mark.models


def _galaxy(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root), *args], cwd=REPO,
                          env=_env(), capture_output=True, text=True, timeout=120, check=False)


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("GALAXY_CONFIG", None)
    return env


def _tasks(root: Path, state: str) -> dict[str, dict]:  # type: ignore[type-arg]
    folder = RigPaths(root).tasks / state
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


def _events(root: Path) -> list[dict]:  # type: ignore[type-arg]
    path = RigPaths(root).events
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def video_plan(tmp_path: Path) -> Path:
    """video.md as committed, with two of its clips, in a tmp folder (outputs land in tmp/runs)."""
    plans = tmp_path / "plans"
    (plans / "clips").mkdir(parents=True)
    shutil.copy(PLAN, plans / "video.md")
    for clip in CLIPS:
        shutil.copy(PLAN.parent / "clips" / f"{clip}.wav", plans / "clips" / f"{clip}.wav")
    return plans / "video.md"


def test_video_plan_runs_end_to_end_on_the_simulated_rig(tmp_path: Path, video_plan: Path) -> None:
    root = tmp_path / "rig"
    submitted = _galaxy(root, "submit", str(video_plan))
    assert submitted.returncode == 0, submitted.stderr
    expected = 3 * len(CLIPS) + 1  # transcribe, segment, embed per clip; one index

    log = (tmp_path / "supervisor.log").open("wb")
    sup = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(root), "supervise", "--sim"],
                           cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    seen_rates: dict[str, dict] = {}  # type: ignore[type-arg]  # task name -> its TaskView, as the snapshot showed it
    try:
        deadline = time.monotonic() + PIPELINE_TIMEOUT_S
        while True:
            snap = _read_snapshot(root)
            if snap is not None:
                for view in snap.recent:
                    seen_rates[view.name] = {"tokens_per_s": view.tokens_per_s,
                                             "realtime_factor": view.realtime_factor, "task_class": view.task_class}
            done = _tasks(root, "complete")
            failed = _tasks(root, "failed")
            assert not failed, {k: v.get("error") for k, v in failed.items()}
            if len(done) == expected and len(seen_rates) >= expected:
                break
            assert sup.poll() is None, "supervisor died: " + (tmp_path / "supervisor.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"pipeline not done after {PIPELINE_TIMEOUT_S:.0f} s: {len(done)}/{expected} complete; "
                + _galaxy(root, "status").stdout)
            time.sleep(0.25)  # polling interval only; nothing below depends on timing
    finally:
        if sup.poll() is None:
            os.kill(sup.pid, signal.SIGTERM)
        try:
            code = sup.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(sup.pid, signal.SIGKILL)
            code = sup.wait()
        log.close()
    assert code == 0, (tmp_path / "supervisor.log").read_text()[-3000:]

    tasks = {t["name"]: t for t in done.values()}
    runs = tmp_path / "runs"
    (batch_dir,) = list(runs.iterdir())

    for clip in CLIPS:
        # Transcribe: real whisper heard the clip.
        transcript = json.loads((batch_dir / f"{clip}.transcript.json").read_text())
        spoken = SPOKEN[clip]
        assert heard_share(spoken, transcript["text"]) >= HEARD_ENOUGH, (clip, spoken, transcript["text"])
        rtf = tasks[f"transcribe[{clip}]"]["result"]["realtime_factor"]
        assert rtf > 0

        # Segment: the LLM got the transcript as tagged data and its answer is the segments file.
        segments = (batch_dir / f"{clip}.segments.txt").read_text()
        seg_task = tasks[f"segment[{clip}]"]
        assert segments.strip() and segments.strip() == seg_task["result"]["text"].strip()
        sample = _training_sample(root, seg_task["task_id"])
        untrusted = sample["prompt"].split("<untrusted_data>", 1)[1]
        assert transcript["text"] in untrusted.replace('\\"', '"')
        assert sample["response"].strip() == segments.strip()

        # Embed: one 384-dim vector per non-empty segment line, whatever the LLM wrote.
        import numpy as np

        vectors = np.load(batch_dir / f"{clip}.embeddings.npy")
        lines = [ln for ln in segments.splitlines() if ln.strip()]
        assert vectors.shape == (len(lines), 384)

    # The aggregate ran last, over every clip's segments.
    index_rows = [json.loads(ln) for ln in (batch_dir / "index.jsonl").read_text().splitlines()]
    assert {r["clip"] for r in index_rows} == set(CLIPS)
    events = _events(root)
    started = {e["task_id"]: e["timestamp"] for e in events if e["event_type"] == "task_started"}
    finished = {e["task_id"]: e["timestamp"] for e in events if e["event_type"] == "task_completed"}
    index_id = tasks["index"]["task_id"]
    assert all(started[index_id] >= at for tid, at in finished.items() if tid != index_id)  # ISO UTC, ms

    # Each task completed exactly once.
    completions = Counter(e["task_id"] for e in events if e["event_type"] == "task_completed")
    assert set(completions) == set(done) and set(completions.values()) == {1}

    # The snapshot (what the dashboard draws) showed tokens/s for the LLM tasks, RTF for transcribe.
    for clip in CLIPS:
        assert (seen_rates[f"segment[{clip}]"]["tokens_per_s"] or 0) > 0
        assert (seen_rates[f"transcribe[{clip}]"]["realtime_factor"] or 0) > 0


def _read_snapshot(root: Path):  # type: ignore[no-untyped-def]
    try:
        return read_snapshot(RigPaths(root).snapshot)
    except ValueError:
        return None


def _training_sample(root: Path, task_id: str) -> dict:  # type: ignore[type-arg]
    path = RigPaths(root).training_samples
    samples = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    mine = [s for s in samples if s["task_id"] == task_id]
    assert len(mine) == 1, f"{len(mine)} training samples for {task_id}"
    return mine[0]
