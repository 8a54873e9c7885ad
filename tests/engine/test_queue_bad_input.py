"""Bad task files: each lands in failed/ with a reason naming the file, bytes kept, others unaffected."""

from __future__ import annotations

import json
import os

import pytest
from queue_helpers import T0, drain_ids, events_of, make_queue, policy, task

from engine.model import TaskStatus

OLD = 1_000_000_000  # mtime for hand-dropped files: "finished being written long ago"


def _drop(q, name: str, data: bytes) -> None:
    path = q.paths.queue / name
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))


def _good(task_id: str) -> bytes:
    return json.dumps({"task_id": task_id, "name": task_id, "command": "true", "task_class": "cpu"}).encode()


BAD = {
    "broken.json": (b'{"task_id": "b1", "name": ', "not valid JSON"),
    "missing.json": (json.dumps({"task_id": "m1", "command": "true"}).encode(), "missing required field 'name'"),
    "mistyped.json": (json.dumps({"task_id": "p1", "name": "p", "command": "true", "priority": "high"}).encode(),
                      "priority must be int"),
    "slash.json": (json.dumps({"task_id": "../../etc/passwd", "name": "x", "command": "true"}).encode(),
                   "not safe as a file name"),
    "dots.json": (json.dumps({"task_id": "a..b", "name": "x", "command": "true"}).encode(),
                  "not safe as a file name"),
    "list.json": (b"[1, 2, 3]", "must be a JSON object"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_goes_to_failed_with_reason_and_others_run(tmp_path, name):
    q = make_queue(tmp_path)
    q.submit([task("before")], T0)
    data, reason = BAD[name]
    _drop(q, name, data)
    _drop(q, "good-dropped.json", _good("dropped-ok"))
    assert sorted(drain_ids(q, T0 + 1)) == ["before", "dropped-ok"]
    [failed] = q.recent("failed", 10)
    assert failed.status is TaskStatus.FAILED
    assert f"queue/{name}" in failed.error and reason in failed.error
    raw = q.paths.failed / failed.result["raw_file"]
    assert raw.read_bytes() == data  # nothing lost: the original bytes are kept
    assert len(events_of(tmp_path, "task_invalid")) == 1
    assert not q.retry(failed.task_id, T0 + 2)  # not a task: fix the file and submit again


def test_fifty_megabyte_file_is_refused_unread(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("small")], T0)
    big = q.paths.queue / "huge.json"
    with open(big, "wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    os.utime(big, (OLD, OLD))
    assert drain_ids(q, T0) == ["small"]
    [failed] = q.recent("failed", 10)
    assert "52,428,800 bytes, over the 1,000,000-byte limit" in failed.error
    assert (q.paths.failed / failed.result["raw_file"]).stat().st_size == 50 * 1024 * 1024


def test_corrupted_file_with_a_proper_queue_name_fails_on_claim(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("victim"), task("fine")], T0)
    [victim] = [n for n in os.listdir(q.paths.queue) if n.endswith("+victim.json")]
    (q.paths.queue / victim).write_bytes(b"\x00garbage")
    assert drain_ids(q, T0) == ["fine"]
    failed = q.get("victim")
    assert failed.status is TaskStatus.FAILED and "not valid JSON" in failed.error


def test_missing_task_class_is_fixed_and_recorded(tmp_path):
    q = make_queue(tmp_path)
    _drop(q, "nocls.json", json.dumps({"task_id": "w1", "name": "whisper it",
                                       "command": "python transcribe.py --gpu 0"}).encode())
    t = q.claim("w1", T0, policy(), 30)
    assert t.task_class.value == "script" and "inferred 'script'" in t.fix_applied
    q.complete(t.task_id, "w1", {}, T0)
    assert "inferred" in q.get("w1").fix_applied  # persisted with the task
    assert events_of(tmp_path, "task_fixed")[0]["fix_applied"] == t.fix_applied


def test_half_written_dropped_file_is_left_alone(tmp_path):
    q = make_queue(tmp_path)
    (q.paths.queue / "writing.json").write_bytes(b'{"task_id": "w",')  # mtime = now: maybe still being written
    assert q.claim("w1", T0, policy(), 30) is None
    assert (q.paths.queue / "writing.json").exists()


def test_cancelling_a_corrupted_file_keeps_its_bytes_and_says_why(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("victim")], T0)
    [victim] = [n for n in os.listdir(q.paths.queue) if n.endswith("+victim.json")]
    (q.paths.queue / victim).write_bytes(b"\x00garbage")  # e.g. a file torn by a power cut
    verdict = q.cancel("victim", T0, "operator")
    assert not verdict
    assert "not a valid task" in verdict.message and "not valid JSON" in verdict.message
    failed = q.get("victim")
    assert failed.status is TaskStatus.FAILED and "not valid JSON" in failed.error
    assert (q.paths.failed / failed.result["raw_file"]).read_bytes() == b"\x00garbage"


def test_an_invalid_file_left_mid_move_by_a_crash_keeps_its_bytes(tmp_path):
    """A hand-dropped file being adopted when the process died: recovery must not delete it."""
    q = make_queue(tmp_path, orphan_age_s=0.0)
    (q.tmp / "dropped.json.adopting").write_bytes(b'{"task_id": "d1", "name": ')
    q.reap_stale(T0)
    assert not (q.tmp / "dropped.json.adopting").exists()
    [record] = list(q.recent("failed", 10))
    assert "not valid JSON" in record.error
    assert (q.paths.failed / record.result["raw_file"]).read_bytes() == b'{"task_id": "d1", "name": '
