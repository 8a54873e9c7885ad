"""galaxy task show ID [--json]: a running (live output from its worker), a failed and a complete task,
through the real argument parser and a real FileQueue; and the paged queue listing behind the dashboard."""

from __future__ import annotations

import json
from pathlib import Path

from queue_helpers import T0, make_queue, policy, task

from engine.cli.main import main
from engine.model import TaskClass, TaskType
from engine.paths import RigPaths
from engine.queue.listing import QueueLister, queued_page
from engine.queue.names import QueueName
from engine.workerstate import WorkerStatus, write_json_dataclass


def _run(root: Path, *args: str) -> int:
    return main(["--root", str(root), *args])


def _rig(root: Path) -> None:
    """b.run is running on w1 (streaming), b.bad failed after its one try, b.ok complete."""
    q = make_queue(root)
    q.submit([task("b.ok", priority=9), task("b.bad", priority=8, max_retries=0),
              task("b.run", name="job[intro]", type=TaskType.LLM, task_class=TaskClass.LLM, model="qwen2.5:7b",
                   command="", params={"prompt": "Summarise the notes\nsecond line"}, priority=7)], now=T0)
    ok = q.claim("w1", T0 + 1, policy("w1"), 60.0)
    assert ok is not None and ok.task_id == "b.ok"
    q.complete("b.ok", "w1", {"output_tail": "all good\n", "return_code": 0}, T0 + 2)
    bad = q.claim("w1", T0 + 3, policy("w1"), 60.0)
    assert bad is not None and bad.task_id == "b.bad"
    q.fail("b.bad", "w1", "exit code 3: Traceback\nValueError: no such file", T0 + 4, return_code=3)
    run = q.claim("w1", T0 + 5, policy("w1"), 600.0)
    assert run is not None and run.task_id == "b.run"
    q.close()
    paths = RigPaths(root)
    paths.workers.mkdir(parents=True, exist_ok=True)
    write_json_dataclass(paths.worker_status("w1"), WorkerStatus(
        worker_id="w1", pid=1, gpus=(0,), state="busy", heartbeat_at=T0 + 6, current_task="b.run",
        task_name="job[intro]", task_class="llm", task_started_at=T0 + 5, progress="The notes say that",
        tokens_per_s=41.5))


def test_show_running_task_streams_its_workers_partial_output(tmp_path, capsys):
    _rig(tmp_path)
    assert _run(tmp_path, "task", "show", "b.run") == 0
    out = capsys.readouterr().out
    assert "state  running" in out and "worker  w1" in out and "job[intro]" in out
    assert "output tail (live):" in out and "The notes say that" in out
    assert "#1 w1" in out and " running" in out  # the claim is the current attempt
    assert _run(tmp_path, "task", "show", "b.run", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "running" and data["output_live"] is True
    assert data["output_tail"] == "The notes say that" and data["tokens_per_s"] == 41.5
    assert data["runs"] == "Summarise the notes" and data["attempts"][-1]["outcome"] == "running"


def test_show_failed_task_has_its_error_and_attempt(tmp_path, capsys):
    _rig(tmp_path)
    assert _run(tmp_path, "task", "show", "b.bad") == 0
    out = capsys.readouterr().out
    assert "state  failed" in out and "ValueError: no such file" in out and "rc=3" in out
    assert _run(tmp_path, "task", "show", "b.bad", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "failed" and data["worker_id"] == "w1" and data["output_live"] is False
    assert data["attempts"][0]["return_code"] == 3 and "no such file" in data["error"]


def test_show_complete_task_has_its_result_tail(tmp_path, capsys):
    _rig(tmp_path)
    assert _run(tmp_path, "task", "show", "b.ok", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "complete" and data["output_tail"] == "all good\n"
    assert data["duration_s"] == 1.0 and data["attempts"][0]["outcome"] == "ok"
    assert _run(tmp_path, "task", "show", "b.ok") == 0
    assert "all good" in capsys.readouterr().out


def test_show_refuses_a_bad_id_before_any_path_and_says_not_found(tmp_path, capsys):
    _rig(tmp_path)
    assert _run(tmp_path, "task", "show", "../b.ok") == 2
    assert "task id '../b.ok' is not valid" in capsys.readouterr().err
    assert _run(tmp_path, "task", "show", "b.nope") == 1
    assert "no task b.nope" in capsys.readouterr().err


def test_queued_page_is_claim_order_filtered_and_paged(tmp_path):
    names = [QueueName(priority=5, task_class=TaskClass.CPU, model=None, enqueued_us=i, task_id=f"b.t{i:05d}")
             for i in range(20_000)]
    names.append(QueueName(priority=9, task_class=TaskClass.LLM, model="qwen2.5:7b", enqueued_us=30_000,
                           task_id="b.urgent"))
    page = queued_page(reversed(names), offset=0, limit=3)
    assert [r.task_id for r in page.rows] == ["b.urgent", "b.t00000", "b.t00001"]
    assert page.total == 20_001 and page.matched == 20_001 and page.rows[0].name == "urgent"
    page = queued_page(names, offset=100, limit=2)
    assert [(r.task_id, r.position) for r in page.rows] == [("b.t00099", 100), ("b.t00100", 101)]
    page = queued_page(names, text="QWEN")
    assert [r.task_id for r in page.rows] == ["b.urgent"] and page.matched == 1


def test_lister_reads_names_only(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task(f"b.t{i}", priority=1 + i % 3) for i in range(30)], now=T0)
    q.close()
    lister = QueueLister(RigPaths(tmp_path).queue, use_inotify=False)
    page = lister.page(limit=5)
    assert page.total == 30 and len(page.rows) == 5 and all(r.priority == 3 for r in page.rows)
    lister.close()


def test_show_a_task_awaiting_approval(tmp_path, capsys):
    _rig(tmp_path)
    q = make_queue(tmp_path)
    assert q.awaiting.park("b.bad", "esc-1", T0 + 10)
    q.close()
    assert _run(tmp_path, "task", "show", "b.bad", "--json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "awaiting_approval"
