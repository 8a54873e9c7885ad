"""Real ``galaxy worker`` processes and a real FileQueue: a worker never takes a brain task, a
brain helps with worker tasks, and a transcribe task whose model no
worker can resolve is never claimed (so never failed): it waits, pending."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from engine.events import tail_events
from engine.model import Task, TaskClass, TaskType
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue

REPO = Path(__file__).resolve().parents[2]


def _state(q: FileQueue, task_id: str) -> str | None:
    t = q.get(task_id)
    return t.status.value if t is not None else None


def _worker(root: Path, worker_id: str, role: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "engine.cli.main", "--root", str(root), "worker", "--worker-id", worker_id,
            "--executor", role, "--exit-when-idle", "--lease", "30"]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_real_workers_claim_only_what_their_role_and_models_allow(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared").ensure()
    q = FileQueue(paths, use_inotify=False)
    now = time.time()
    q.submit([Task("think", "think", command="true", executor="brain", created_at=now),
              Task("either", "either", command="true", executor="any", created_at=now),
              Task("chore", "chore", command="true", created_at=now),
              Task("tr", "tr", type=TaskType.TRANSCRIBE, task_class=TaskClass.SCRIPT, model="no-such-model-h12",
                   params={"audio": str(tmp_path / "a.wav")}, created_at=now)], now)
    q.close()

    small = _worker(paths.root, "w1", "worker")
    assert small.returncode == 0, small.stderr[-2000:]
    q = FileQueue(paths, use_inotify=False)
    assert _state(q, "chore") == "complete" and _state(q, "either") == "complete"
    assert _state(q, "think") == "pending"  # a brain task is never a worker's

    brain = _worker(paths.root, "big", "brain")
    assert brain.returncode == 0, brain.stderr[-2000:]
    assert _state(q, "think") == "complete"
    assert _state(q, "tr") == "pending"  # never claimed: it waits instead of failing
    events = tail_events(paths.events, 1000)
    assert [e for e in events if e.get("task_id") == "tr" and e.get("event_type") != "task_submitted"] == []
    by_worker = {e["task_id"]: e.get("worker_id") for e in events if e.get("event_type") == "task_claimed"}
    assert by_worker == {"think": "big", "either": "w1", "chore": "w1"}
    q.close()
