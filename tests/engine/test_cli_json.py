"""``--json`` on every command that lists or reports: each output parses as JSON and says what
the text does; and shell completion of commands and ids (argcomplete)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import T0, make_queue, task

from engine.cli.main import main
from engine.inference.ollama_backend import OllamaBackend
from engine.paths import RigPaths
from engine.sim import SimModelSpec, SimulatedOllamaServer
from engine.snapshot import SNAPSHOT_VERSION, Snapshot, WorkerView, write_snapshot

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "shared" / "plans" / "hello.md"


def _json(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str, rc: int = 0) -> Any:
    cfg = tmp_path / "galaxy.toml"
    if not cfg.exists():
        cfg.write_text("")
    capsys.readouterr()
    assert main(["--root", str(tmp_path / "shared"), "--config", str(cfg), *argv]) == rc
    return json.loads(capsys.readouterr().out)


def test_ollama_ps_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SimulatedOllamaServer([SimModelSpec("qwen2.5:7b", size_mb=4700, gpu_fraction=0.25)], time_scale=0) as srv:
        OllamaBackend(srv.host).load("qwen2.5:7b")
        data = _json(tmp_path, capsys, "ollama-ps", srv.host, "--json")
    assert [m["name"] for m in data["models"]] == ["qwen2.5:7b"] and data["models"][0]["size_vram_bytes"] > 0
    assert any("partly on CPU" in w for w in data["warnings"])
    down = _json(tmp_path, capsys, "ollama-ps", "http://127.0.0.1:9", "--json", rc=1)
    assert down["models"] == [] and down["error"]


def test_cluster_route_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "galaxy.toml").write_text('[[node]]\nname = "w1"\nendpoint = "http://127.0.0.1:11435"\n'
                                          'backend = "ollama"\nmodel = "qwen2.5:7b"\ntier = 0\n')
    data = _json(tmp_path, capsys, "cluster", "route", "extract the date", "--json")
    assert data["candidates"] == ["w1"] and data["error"] is None and "try w1" in data["summary"]


def test_plan_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = _json(tmp_path, capsys, "plan", "check", str(PLAN), "--json")
    assert ok["ok"] is True and ok["tasks"] > 0 and sum(ok["by_type"].values()) == ok["tasks"]
    bad = tmp_path / "bad.md"
    bad.write_text("# plan\n\n- [ ] shell: \n")
    err = _json(tmp_path, capsys, "plan", "check", str(bad), "--json", rc=1)
    assert err["ok"] is False and err["errors"] and all(isinstance(e, str) for e in err["errors"])


def test_bench_schedule_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(tmp_path, capsys, "bench", "schedule", "--workload", "a", "--tasks", "20", "--gpus", "2", "--json")
    policies = {r["figures"]["policy"] for r in data["rows"]}
    assert policies == {"galaxy", "baseline"} and all(r["lower_bound_s"] > 0 for r in data["rows"])


def test_escalations_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(_json(tmp_path, capsys, "escalations", "--json"), (list, dict))


def test_task_show_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    q = make_queue(tmp_path / "shared")
    try:
        q.submit([task("t1")], now=T0)
    finally:
        q.close()
    data = _json(tmp_path, capsys, "task", "show", "t1", "--json")
    assert data["state"] == "queued" and "t1" in json.dumps(data)


def test_config_show_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(tmp_path, capsys, "config", "show", "--json")
    assert data["root"] == str((tmp_path / "shared").resolve()) and data["values"]


def test_status_and_doctor_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    RigPaths(tmp_path / "shared").ensure()
    assert isinstance(_json(tmp_path, capsys, "status", "--json"), dict)
    capsys.readouterr()
    main(["--root", str(tmp_path / "shared"), "--config", str(tmp_path / "galaxy.toml"), "doctor", "--sim", "--json"])
    assert json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------- completion

def _complete(tmp_path: Path, line: str) -> list[str]:
    """What argcomplete answers for ``line`` (as the shell would ask it)."""
    out = tmp_path / "completions.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO), "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash",
           "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n",
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "GALAXY_ROOT": str(tmp_path / "shared"),
           "GALAXY_CONFIG": str(tmp_path / "none.toml")}
    proc = subprocess.run([sys.executable, "-m", "engine.cli.main"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return sorted(x.strip() for x in out.read_text().split("\n") if x.strip())


def test_completion_of_commands_options_and_ids(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared").ensure()
    (paths.failed / "bad-1.json").write_text("{}")  # names only: the content is never read
    (paths.failed / "bad-2.json").write_text("not json")
    (paths.processing / "run-1+cpu+w1+1700000000000000+60000.json").write_text("")
    (paths.escalations / "esc-9.json").write_text("")
    workers = tuple(WorkerView(worker_id=w, gpus=(), state="running") for w in ("gpu0", "gpu1", "cpu0"))
    write_snapshot(paths.snapshot, Snapshot(version=SNAPSHOT_VERSION, seq=1, taken_at=T0, rig="r", simulated=True,
                                            telemetry_status="simulated rig", workers=workers))
    assert _complete(tmp_path, "galaxy pause gp") == ["gpu0", "gpu1"]
    assert "service" in _complete(tmp_path, "galaxy serv")
    assert "--json" in _complete(tmp_path, "galaxy status --j")
    assert _complete(tmp_path, "galaxy retry bad") == ["bad-1", "bad-2"]
    assert _complete(tmp_path, "galaxy task show r") == ["run-1"]
    assert _complete(tmp_path, "galaxy approve e") == ["esc-9"]


def test_completion_snippets(capsys: pytest.CaptureFixture[str]) -> None:
    for shell in ("bash", "zsh"):
        assert main(["completion", shell]) == 0
        assert "galaxy" in capsys.readouterr().out


def test_task_ids_match_the_prefix_among_many_names_without_reading_them(tmp_path: Path) -> None:
    from engine.cli.completion import MAX_NAMES, task_ids

    paths = RigPaths(tmp_path / "shared").ensure()
    for i in range(MAX_NAMES + 100):
        (paths.failed / f"t{i:05d}.json").mkdir()  # a directory: reading it would fail; names are enough
    assert task_ids(paths.root, "t020") == [f"t020{i:02d}" for i in range(100)]
    assert len(task_ids(paths.root)) == MAX_NAMES


def test_cluster_status_and_plan_show_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "galaxy.toml").write_text('[[node]]\nname = "w1"\nendpoint = "http://127.0.0.1:9"\n'
                                          'backend = "ollama"\nmodel = "qwen2.5:7b"\ntier = 0\n')
    status = _json(tmp_path, capsys, "cluster", "status", "--json")
    assert "w1" in json.dumps(status)
    tasks = _json(tmp_path, capsys, "plan", "show", str(PLAN), "--json")
    assert isinstance(tasks, list) and tasks and all("task_id" in t for t in tasks)
