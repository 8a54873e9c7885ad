"""A crash loop from one file is impossible: a real ``galaxy worker`` process and a real
supervisor tick meet JSON nested 100,000 deep, a FIFO and a link to /dev/zero in the queue and
in the command channel; they keep running, and each file ends in failed/ or rejected/ once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.clock import FakeClock
from engine.commands import CommandKind, FileCommandSink, make_command
from engine.config import GalaxyConfig, GroupConfig
from engine.events import EventLog
from engine.model import Task, TaskClass, TaskStatus
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.queue.names import QueueName
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.sim_rig import SimulatedRig

REPO = Path(__file__).resolve().parents[2]
DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 KB: a task file may be 1 MB
OLD = 1_000_000_000


def _galaxy_worker(root: Path, worker_id: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root), "worker",
                           "--worker-id", worker_id, "--exit-when-idle"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def _poison_queue(paths: RigPaths) -> list[str]:
    named = QueueName(9, TaskClass.CPU, None, 1, "deep-named").render()
    (paths.queue / named).write_bytes(DEEP)
    (paths.queue / "deep-dropped.json").write_bytes(DEEP)
    os.mkfifo(paths.queue / "fifo-dropped.json")
    (paths.queue / "zero-dropped.json").symlink_to("/dev/zero")
    for name in (named, "deep-dropped.json", "fifo-dropped.json"):
        os.utime(paths.queue / name, (OLD, OLD))
    return [named, "deep-dropped.json", "fifo-dropped.json", "zero-dropped.json"]


def test_a_real_worker_survives_poison_in_the_queue_and_a_restart_finds_nothing_left(tmp_path):
    paths = RigPaths(tmp_path).ensure()
    q = FileQueue(paths, events=EventLog(paths.events), use_inotify=False)
    q.submit([Task(task_id="good", name="good", command="echo fine", task_class=TaskClass.CPU)], 1.0)
    poison = _poison_queue(paths)
    first = _galaxy_worker(tmp_path, "w1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert q.get("good").status is TaskStatus.COMPLETE
    assert os.listdir(paths.queue) == [] and os.listdir(q.tmp) == []
    records = [json.loads((paths.failed / n).read_text()) for n in os.listdir(paths.failed) if n.endswith(".json")]
    assert sorted(r["result"]["invalid_file"] for r in records) == sorted(poison)
    again = _galaxy_worker(tmp_path, "w2")  # a restart: nothing is read twice, nothing crashes
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(os.listdir(paths.failed)) == 2 * len(poison)  # <id>.json + <id>.raw each, no more


def test_a_supervisor_tick_survives_poison_in_the_command_channel(tmp_path):
    clock = FakeClock(1_000.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="t", groups=(GroupConfig("w1", gpus=(1,)),), source=None, origin="test")
    queue = FileQueue(paths, use_inotify=False)
    logs: list[tuple[str, dict]] = []
    sup = Supervisor(cfg, paths, queue, SimulatedRig.with_count(2, clock=clock), FakeLauncher(), simulated=True,
                     pid=4242, log=lambda msg, **kw: logs.append((msg, kw)))
    sup.start(clock.now())
    try:
        cmds = paths.commands
        (cmds / "001-deep100k.json").write_bytes(DEEP)
        (cmds / "002-deep30k.json").write_bytes(b"[" * 30_000 + b"]" * 30_000)  # under the size limit
        os.mkfifo(cmds / "003-fifo.json")
        (cmds / "004-zero.json").symlink_to("/dev/zero")
        FileCommandSink(cmds).send(make_command(CommandKind.PAUSE, "w1", source="t", now=999.0))
        for _ in range(3):
            clock.advance(0.5)
            sup.tick(clock.now())
        outcomes = {kw["message"].split(":")[0]: kw["outcome"] for msg, kw in logs if msg == "command"}
        assert [outcomes.get(f"00{i}-{n}.json") for i, n in enumerate(["deep100k", "deep30k", "fifo", "zero"], 1)] \
            == ["refused"] * 4
        assert sorted(os.listdir(cmds / "rejected")) == sorted(
            f"00{i}-{n}.json{ext}" for i, n in enumerate(["deep100k", "deep30k", "fifo", "zero"], 1)
            for ext in ("", ".reason.txt"))
        assert "nested too deep" in (cmds / "rejected" / "002-deep30k.json.reason.txt").read_text()
        assert [kw["outcome"] for msg, kw in logs if msg == "command" and kw["kind"] == "pause"] == ["ok"]
        assert [name for name in os.listdir(cmds) if name != "rejected"] == []
    finally:
        queue.close()
