"""Disk full: a submission is all or nothing, a finishing task stays visible, log lines are
whole or absent. ENOSPC comes from the CrashingFs double (after a given number of bytes,
with a short write first, as a real disk does), and, where this runs as root, from a real
tiny tmpfs under the real CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.events import EventLog, tail_events
from engine.model import TaskStatus
from engine.paths import RigPaths
from engine.queue.fsops import WriteError
from engine.queue.ledger import COMPLETE, Ledger
from tests.doubles.crash_fs import CrashingFs
from tests.reliability.crash_harness import LEASE_S, T0, open_queue, policy, states, task

REPO = Path(__file__).resolve().parents[2]
BATCH = [task("a"), task("b", "a"), task("c"), task("d", "b", "c")]


@pytest.mark.parametrize("space", [0, 40, 400, 1500, 2600])
def test_submit_on_a_full_disk_queues_nothing_and_names_the_file(tmp_path, space: int) -> None:
    fs = CrashingFs()
    q = open_queue(tmp_path, fs)
    fs.full, fs.space = True, space
    with pytest.raises(WriteError) as err:
        q.submit(BATCH, T0)
    assert str(err.value).startswith(f"no space left writing {tmp_path}")
    assert dict(states(q.paths)) == {}
    assert not os.listdir(q.tmp) and not os.listdir(q.journal.dir)
    assert not os.listdir(q.paths.held / "_deps") if (q.paths.held / "_deps").exists() else True
    assert not [e for e in tail_events(q.paths.events, 100) if e["event_type"] in ("task_submitted", "task_held")]
    fs.full = False  # space again: the same batch goes in whole
    assert q.submit(BATCH, T0 + 1) == ["a", "b", "c", "d"]
    assert dict(states(q.paths).items()) == {"a": ["queue"], "b": ["held"], "c": ["queue"],
                                                           "d": ["held"]}
    q.close()


def test_a_task_finishing_on_a_full_disk_stays_in_processing_and_completes_once_later(tmp_path) -> None:
    fs = CrashingFs()
    q = open_queue(tmp_path, fs)
    q.submit([task("a"), task("b", "a")], T0)
    assert q.claim("w1", T0, policy("w1"), LEASE_S).task_id == "a"
    fs.full, fs.space = True, 0
    with pytest.raises(WriteError, match="no space left writing"):
        q.complete("a", "w1", {"ok": 1}, T0 + 1)
    running = q.get("a")
    assert running.status is TaskStatus.PROCESSING and running.lease_owner == "w1"  # visible, with its lease
    with pytest.raises(WriteError):
        q.fail("a", "w1", "exit 1", T0 + 2, retryable=False)
    assert q.get("a").status is TaskStatus.PROCESSING
    assert not os.listdir(q.tmp) and not os.listdir(q.journal.dir)
    fs.full = False
    q.complete("a", "w1", {"ok": 1}, T0 + 3)
    assert q.get("a").status is TaskStatus.COMPLETE
    assert q.get("b").status is TaskStatus.PENDING  # released
    assert q.counts().by_state["complete"] == {"cpu": 1}
    q.close()


def test_a_lease_reaped_on_a_full_disk_stays_in_processing(tmp_path) -> None:
    fs = CrashingFs()
    q = open_queue(tmp_path, fs)
    q.submit([task("a")], T0)
    q.claim("w1", T0, policy("w1"), LEASE_S)
    fs.full, fs.space = True, 0
    with pytest.raises(WriteError):
        q.reap_stale(T0 + LEASE_S + 1)
    assert states(q.paths)["a"] == ["processing"]
    fs.full = False
    assert q.reap_stale(T0 + LEASE_S + 2) == ["a"]
    assert states(q.paths)["a"] == ["queue"]
    q.close()


def test_a_torn_event_line_is_skipped_and_the_next_line_is_read_whole(tmp_path) -> None:
    fs = CrashingFs()
    log = EventLog(tmp_path / "events.jsonl", fs=fs)
    log.emit("task_submitted", at=T0, task_id="first")
    fs.full, fs.space = True, 25  # the next line is cut after 25 bytes and its closing newline fails too
    log.emit("task_submitted", at=T0, task_id="torn")
    assert log.write_errors == 1
    fs.full = False
    log.emit("task_submitted", at=T0, task_id="after")
    raw = (tmp_path / "events.jsonl").read_bytes()
    assert raw.count(b"\n") == 2  # the fragment is glued in front of the next line
    assert [e["task_id"] for e in tail_events(tmp_path / "events.jsonl")] == ["first", "after"]


def test_a_short_event_write_is_closed_by_a_newline(tmp_path) -> None:
    fs = CrashingFs()
    log = EventLog(tmp_path / "events.jsonl", fs=fs)
    fs.full, fs.space = True, 30
    fs.space_after_short = 1  # room for the newline that closes the fragment
    log.emit("task_submitted", at=T0, task_id="torn")
    fs.full = False
    log.emit("task_submitted", at=T0, task_id="after")
    lines = (tmp_path / "events.jsonl").read_bytes().split(b"\n")
    assert len(lines[0]) == 30 and lines[1].startswith(b'{"timestamp":')
    assert [e["task_id"] for e in tail_events(tmp_path / "events.jsonl")] == ["after"]


def test_a_torn_ledger_line_counts_nothing(tmp_path) -> None:
    fs = CrashingFs()
    ledger = Ledger(tmp_path / "ledger.log", fs=fs)
    ledger.append(T0, COMPLETE, "cpu", "one")
    fs.full, fs.space = True, 24  # "<time_us> C cpu tw" : looks like a line, but its check is missing
    with pytest.raises(WriteError):
        ledger.append(T0, COMPLETE, "cpu", "two")
    fs.full = False
    ledger.append(T0, COMPLETE, "cpu", "three")
    reader = Ledger(tmp_path / "ledger.log")
    reader.refresh()
    assert reader.counts["complete"] == {"cpu": 2}
    assert reader.recent_ids("complete") == ["three", "one"]


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, check=False).returncode == 0


def test_galaxy_submit_on_a_real_full_filesystem(tmp_path) -> None:
    """The real thing: a 256 KB tmpfs, a 640 KB batch. Needs root (mount); skipped otherwise."""
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "256k"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        batch = tmp_path / "batch.json"
        batch.write_text("[" + ",".join(f'{{"task_id": "big{i}", "name": "big{i}", "task_class": "cpu", '
                                        f'"command": "echo {"x" * 20_000}"}}' for i in range(32)) + "]")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(mnt), "submit", str(batch)],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 1
        assert f"no space left writing {mnt}" in out.stderr and "nothing was queued" in out.stderr
        assert "Traceback" not in out.stderr + out.stdout
        paths = RigPaths(mnt)
        assert dict(states(paths)) == {}
        assert not os.listdir(paths.tasks / ".tmp") and not os.listdir(paths.tasks / ".journal")
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_the_demand_learner_reads_a_whole_event_glued_behind_a_torn_one(tmp_path) -> None:
    from engine.scheduling.costs import SwitchCosts
    from engine.supervisor.model_demand import ModelDemand

    class Lookup:
        def models(self, task_ids, budget):  # type: ignore[no-untyped-def]
            return dict.fromkeys(list(task_ids)[:budget], "qwen")

    fs = CrashingFs()
    log = EventLog(tmp_path / "events.jsonl", fs=fs)
    demand = ModelDemand(log.path, Lookup(), n_groups=2, priors=SwitchCosts())
    log.emit("task_submitted", at=T0, task_id="a", task_class="llm")
    fs.full, fs.space = True, 25
    log.emit("task_submitted", at=T0, task_id="torn", task_class="llm")
    fs.full = False
    log.emit("task_submitted", at=T0, task_id="b", task_class="llm")
    assert demand.view(T0 + 1)["qwen"].claimable == 2 and demand.bad_lines == 0


def test_a_cancel_on_a_full_disk_leaves_the_task_where_it_was(tmp_path) -> None:
    fs = CrashingFs()
    q = open_queue(tmp_path, fs)
    q.submit([task("a"), task("b", "a")], T0)
    fs.full, fs.space = True, 0
    with pytest.raises(WriteError):
        q.cancel("b", T0 + 1, "not needed")
    assert states(q.paths)["b"] == ["held"] and not os.listdir(q.tmp)
    fs.full = False
    q.claim("w1", T0 + 2, policy("w1"), LEASE_S)
    q.complete("a", "w1", {}, T0 + 3)
    assert q.get("b").status is TaskStatus.PENDING  # its marker was kept: released by a's completion
    q.close()
