"""The group's ``models`` table travels from galaxy.toml to the handlers: launcher argv/env ->
``galaxy worker --models`` -> ``TaskContext.extras["models"]``; LLM answers go to the
training-samples log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.cmd_queue import models_from_text
from engine.config import GroupConfig
from engine.model import Task
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.supervisor.launcher import worker_argv, worker_env

REPO = Path(__file__).resolve().parents[2]


def test_launcher_passes_the_groups_models_in_argv_and_env(tmp_path: Path) -> None:
    group = GroupConfig(name="gpu0", gpus=(0,), models={"transcribe": "tiny.en", "embed": "/m/minilm"})
    argv = worker_argv(group, tmp_path)
    assert json.loads(argv[argv.index("--models") + 1]) == {"transcribe": "tiny.en", "embed": "/m/minilm"}
    env = worker_env(group, base={})
    assert json.loads(env["GALAXY_WORKER_MODELS"]) == {"transcribe": "tiny.en", "embed": "/m/minilm"}
    bare = GroupConfig(name="gpu1", gpus=(1,))
    assert "--models" not in worker_argv(bare, tmp_path)
    assert "GALAXY_WORKER_MODELS" not in worker_env(bare, base={})


def test_models_text_is_checked() -> None:
    assert models_from_text(None) == {} and models_from_text("  ") == {}
    assert models_from_text('{"embed": "x"}') == {"embed": "x"}
    with pytest.raises(ValueError, match="not valid JSON"):
        models_from_text("{embed")
    with pytest.raises(ValueError, match="object of strings"):
        models_from_text('{"embed": 3}')


def _worker(root: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root), "worker", "--worker-id",
                           "w0", "--exit-when-idle", *extra], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, check=False)


def _embed_task(root: Path) -> None:
    texts = root / "texts.txt"
    texts.parent.mkdir(parents=True, exist_ok=True)
    texts.write_text("one line\n")
    q = FileQueue(RigPaths(root), use_inotify=False)
    try:
        q.submit([Task.from_dict({"task_id": "e1", "name": "embed", "type": "embed", "task_class": "script",
                                  "command": "", "params": {"input": str(texts)}})], 0.0)
    finally:
        q.close()


@pytest.mark.parametrize("how", ["argv", "env"])
def test_the_worker_hands_the_models_table_to_the_handler(tmp_path: Path, how: str) -> None:
    """A models table naming an embedder that is not on disk: the worker's claim filter asks the
    handler's own model resolution, which refuses it, so the task is left waiting instead of failing
    (without the table the default embedder, which is installed, would resolve and run it)."""
    root = tmp_path / "rig"
    _embed_task(root)
    table = json.dumps({"embed": "no-such-embedder"})
    proc = _worker(root, "--models", table) if how == "argv" else _worker(root, env={"GALAXY_WORKER_MODELS": table})
    assert proc.returncode == 0, proc.stderr
    q = FileQueue(RigPaths(root), use_inotify=False)
    try:
        task = q.get("e1")
    finally:
        q.close()
    assert task is not None and task.status.value == "pending", task
    assert not (RigPaths(root).tasks / "failed" / "e1.json").exists()


def test_a_bad_models_table_stops_the_worker_with_a_clear_error(tmp_path: Path) -> None:
    proc = _worker(tmp_path / "rig", "--models", "[1, 2]")
    assert proc.returncode == 2
    assert "--models" in proc.stderr and "object of strings" in proc.stderr
