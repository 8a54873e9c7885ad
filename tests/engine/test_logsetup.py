"""engine/logsetup.py: JSON lines, journald lines, size rotation of each process's own log, and
events.jsonl rotated under many writers without the demand reader losing a line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.events import EventLog
from engine.logsetup import (
    EventsRotator,
    LogConfig,
    log_config_problems,
    log_fields,
    rotate_if_over,
    rotated_rest,
    setup_logging,
    stderr_is_journal,
)
from engine.scheduling.costs import SwitchCosts
from engine.supervisor.model_demand import ModelDemand

T0 = 1_700_000_000.0
QWEN = "qwen2.5:7b"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_root_logger():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_message_fields(tmp_path: Path) -> None:
    setup_logging(level="debug", log_file=tmp_path / "s.log")
    logging.getLogger("galaxy.supervisor").warning("worker exited", extra=log_fields(worker="gpu0", code=1))
    logging.getLogger("engine.x").debug("detail")
    recs = [json.loads(x) for x in (tmp_path / "s.log").read_text().splitlines()]
    assert recs[0]["level"] == "warning" and recs[0]["logger"] == "galaxy.supervisor"
    assert recs[0]["message"] == "worker exited" and recs[0]["fields"] == {"worker": "gpu0", "code": 1}
    assert isinstance(recs[0]["time"], float) and recs[1]["level"] == "debug"


def test_level_filters(tmp_path: Path) -> None:
    setup_logging(level="warning", log_file=tmp_path / "s.log")
    logging.getLogger("engine.handlers.warm").info("hidden")
    logging.getLogger("engine.handlers.warm").error("shown")
    assert [json.loads(x)["message"] for x in (tmp_path / "s.log").read_text().splitlines()] == ["shown"]


def test_a_process_rotates_its_own_file_by_size(tmp_path: Path) -> None:
    setup_logging(log_file=tmp_path / "w.log", config=LogConfig(max_mb=2 / 1024, backups=2))  # 2 KiB
    log = logging.getLogger("galaxy.worker.gpu0")
    for i in range(200):
        log.info("line", extra=log_fields(i=i))
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["w.log", "w.log.1", "w.log.2"]
    for f in files:
        assert f.stat().st_size <= 2048
        assert all(json.loads(x)["message"] == "line" for x in f.read_text().splitlines())  # whole lines only
    last = json.loads((tmp_path / "w.log").read_text().splitlines()[-1])
    assert last["fields"]["i"] == 199


def test_journal_lines_have_a_priority_and_no_time(tmp_path: Path) -> None:
    out = (tmp_path / "stderr").open("w")
    st = os.fstat(out.fileno())
    env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    assert stderr_is_journal(env, out) and not stderr_is_journal({"JOURNAL_STREAM": "1:2"}, out)
    setup_logging(env=env, stream=out)
    logging.getLogger("galaxy.supervisor").warning("thermal hold", extra=log_fields(gpu=1, note="too hot"))
    out.close()
    assert (tmp_path / "stderr").read_text() == '<4>galaxy.supervisor: thermal hold gpu=1 note="too hot"\n'


def test_stderr_that_is_not_the_journal_gets_json(tmp_path: Path) -> None:
    out = (tmp_path / "stderr").open("w")
    setup_logging(env={"JOURNAL_STREAM": "1:2"}, stream=out)  # inherited by a child whose stderr is a file
    logging.getLogger("x").info("hello")
    out.close()
    assert json.loads((tmp_path / "stderr").read_text())["message"] == "hello"


def test_log_table_is_checked() -> None:
    assert log_config_problems({"level": "info", "max_mb": 5, "backups": 3}) == []
    bad = dict(log_config_problems({"level": "loud", "max_mb": -1, "backups": 1.5, "colour": 1}))
    assert set(bad) == {"level", "max_mb", "backups", "colour"}


def test_rotate_if_over_keeps_backups(tmp_path: Path) -> None:
    out = tmp_path / "gpu0.out"
    out.write_bytes(b"x" * 100)
    assert not rotate_if_over(out, 1000, 2)
    assert rotate_if_over(out, 50, 2) and not out.exists() and (tmp_path / "gpu0.out.1").exists()


class _Lookup:
    def models(self, task_ids: Sequence[str], budget: int) -> dict[str, str | None]:
        return dict.fromkeys(list(task_ids)[:budget], QWEN)


def test_events_rotation_under_a_kept_open_writer_loses_nothing_for_the_demand_reader(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventLog(path)  # keeps its descriptor; reopens by name at most once a second
    demand = ModelDemand(path, _Lookup(), n_groups=4, priors=SwitchCosts())
    for i in range(10):
        writer.emit("task_submitted", at=T0, task_id=f"a{i}", task_class="llm")
    demand.update(T0 + 1)
    for i in range(5):  # written but not yet read when the rotation comes
        writer.emit("task_submitted", at=T0, task_id=f"b{i}", task_class="llm")
    rotator = EventsRotator(path, max_bytes=100, backups=2, check_every_s=0)
    assert rotator.tick(T0 + 2) and rotator.rotations == 1
    for i in range(5):  # the writer has not noticed yet: these land in events.jsonl.1
        writer.emit("task_submitted", at=T0, task_id=f"c{i}", task_class="llm")
    EventLog(path).emit("task_submitted", at=T0, task_id="d0", task_class="llm")  # another process: the new file
    assert path.exists() and (tmp_path / "events.jsonl.1").exists()
    assert demand.view(T0 + 3)[QWEN].claimable == 21  # 10 read + 5 + 5 from the old file + 1 from the new
    lines = [json.loads(x) for f in (path, tmp_path / "events.jsonl.1") for x in f.read_text().splitlines()]
    assert len(lines) == 21  # every line whole, none lost


def test_rotation_keeps_at_most_backups_files(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    rotator = EventsRotator(path, max_bytes=1, backups=2, check_every_s=0)
    for n in range(4):
        path.write_text(f"{n}\n")
        rotator.tick(float(n))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl.1", "events.jsonl.2"]
    assert (tmp_path / "events.jsonl.1").read_text() == "3\n" and (tmp_path / "events.jsonl.2").read_text() == "2\n"


def test_rotated_rest_only_reads_the_file_the_reader_was_in(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    (tmp_path / "events.jsonl.1").write_bytes(b"one\ntwo\nthr")
    ino = (tmp_path / "events.jsonl.1").stat().st_ino
    assert rotated_rest(path, ino, 4) == b"two\n"  # the unfinished last line is not a line
    assert rotated_rest(path, ino + 1, 0) == b"" and rotated_rest(path, None, 0) == b""


def test_worker_logs_to_the_file_the_supervisor_names(tmp_path: Path) -> None:
    """`galaxy worker` honours $GALAXY_LOG_FILE / $GALAXY_LOG_LEVEL (set by the supervisor at spawn)."""
    log = tmp_path / "logs" / "workers" / "w1.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "GALAXY_LOG_FILE": str(log), "GALAXY_LOG_LEVEL": "info"}
    out = subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(tmp_path / "shared"), "worker",
                          "--worker-id", "w1", "--exit-when-idle"], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    assert [r["message"] for r in recs if r["logger"] == "galaxy.worker.w1"] == ["worker started", "worker stopped"]


def test_request_logs_of_http_libraries_only_at_debug(tmp_path: Path) -> None:
    setup_logging(level="info", log_file=tmp_path / "s.log")
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1:11434/api/ps")  # every health check
    assert (tmp_path / "s.log").read_text() == ""
    setup_logging(level="debug", log_file=tmp_path / "d.log")
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1:11434/api/ps")
    assert "HTTP Request" in (tmp_path / "d.log").read_text()


def test_metrics_feed_counts_lines_left_in_the_rotated_file(tmp_path: Path) -> None:
    from engine.metrics.feed import EventFeed

    path = tmp_path / "events.jsonl"
    writer = EventLog(path)
    feed = EventFeed(path)
    writer.emit("task_failed", at=T0, task_id="a", task_class="llm")
    feed.update(T0 + 60)
    writer.emit("task_failed", at=T0, task_id="b", task_class="cpu")  # not scraped yet when the rotation comes
    EventsRotator(path, max_bytes=1, backups=2, check_every_s=0).tick(T0)
    EventLog(path).emit("task_failed", at=T0, task_id="c", task_class="script")
    feed.update(T0 + 60)
    assert feed.tallies.failed == {"llm": 1, "cpu": 1, "script": 1}
