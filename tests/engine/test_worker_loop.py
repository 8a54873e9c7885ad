"""The worker loop in-process: handlers, failures, control file, stop and hand-back."""

from __future__ import annotations

import os
import threading
import time

from queue_helpers import T0, events_of, make_queue, task
from worker_doubles import NoopHandler, RecordingResidency, WaitForFileHandler

from engine.clock import FakeClock, SystemClock
from engine.events import EventLog
from engine.handlers.registry import HandlerRegistry
from engine.model import TaskClass, TaskStatus, TaskType
from engine.scheduling.policy import WorkerProfile
from engine.worker.loop import Worker, WorkerSettings
from engine.workerstate import WorkerControl, read_status, write_json_dataclass


def _worker(q, *, clock=None, registry=None, residency=None, **settings):
    settings.setdefault("exit_when_idle", True)
    settings.setdefault("housekeeping_s", 0.0)
    return Worker(q, registry or HandlerRegistry(), residency or RecordingResidency(), clock or FakeClock(T0),
                  q.paths, EventLog(q.paths.events), "w1", (1, 3), WorkerProfile("w1"), WorkerSettings(**settings))


def _until(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_shell_tasks_run_with_cuda_env_and_output_tail(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("ok", command="echo gpus=$CUDA_VISIBLE_DEVICES; seq 1 5000 | tail -1"),
              task("bad", command="echo oops >&2; exit 7", max_retries=0)], T0)
    w = _worker(q)
    assert w.run() == 2
    ok = q.get("ok")
    assert ok.status is TaskStatus.COMPLETE
    assert ok.result["return_code"] == 0 and "gpus=1,3" in ok.result["output_tail"]
    assert ok.result["output_tail"].endswith("5000\n") and ok.result["elapsed_s"] >= 0
    bad = q.get("bad")
    assert bad.status is TaskStatus.FAILED and bad.attempts[-1].return_code == 7
    assert "exit code 7" in bad.error and "oops" in bad.error
    status = read_status(q.paths.worker_status("w1"))
    assert status.tasks_done == 1 and status.tasks_failed == 1 and status.gpus == (1, 3)
    started = events_of(tmp_path, "task_started")
    assert {e["gpu_id"] for e in started} == {1}


def test_shell_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    q = make_queue(tmp_path)
    q.submit([task("slow", command=f"sleep 60 & echo $! > {pidfile}; wait", timeout_s=0.5, max_retries=0)], T0)
    _worker(q, clock=SystemClock()).run()
    failed = q.get("slow")
    assert failed.status is TaskStatus.FAILED and "timed out after 0.5s" in failed.error
    assert failed.attempts[-1].outcome == "timeout"
    child = int(pidfile.read_text())
    _until(lambda: not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z")


def test_missing_handler_is_a_definition_error(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("gen", type=TaskType.LLM, task_class=TaskClass.LLM, max_retries=3)], T0)
    registry = HandlerRegistry({TaskType.SHELL: "engine.handlers.shell:ShellHandler",
                                TaskType.LLM: "engine.handlers.not_there:Nope"})
    _worker(q, registry=registry).run()
    failed = q.get("gen")
    assert failed.status is TaskStatus.FAILED and failed.retry_count == 0
    assert failed.error.startswith("no handler for type llm on this worker")


def test_failure_is_retried_after_backoff(tmp_path):
    clock = FakeClock(T0)
    q = make_queue(tmp_path, backoff_base_s=10)
    marker = tmp_path / "second-time"
    q.submit([task("flaky", command=f"[ -e {marker} ] || {{ touch {marker}; exit 1; }}")], T0)
    w = _worker(q, clock=clock)
    assert w.run() == 1
    assert q.get("flaky").status is TaskStatus.PENDING  # in backoff
    clock.advance(20)
    assert _worker(q, clock=clock).run() == 1
    done = q.get("flaky")
    assert done.status is TaskStatus.COMPLETE and done.retry_count == 1


def test_handlers_are_built_once_and_residency_is_asked_each_time(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task(f"n{i}") for i in range(5)], T0)
    res = RecordingResidency()
    registry = HandlerRegistry(instances={TaskType.SHELL: NoopHandler()})
    assert _worker(q, registry=registry, residency=res).run() == 5
    assert [c[0] for c in res.calls] == ["prepare", "finished"] * 5
    assert q.get("n0").result["pid_gpus"] == "1,3"


def test_control_pause_unload_and_drain(tmp_path):
    q = make_queue(tmp_path)
    ctl_path = q.paths.worker_control("w1")
    q.paths.workers.mkdir(parents=True, exist_ok=True)
    write_json_dataclass(ctl_path, WorkerControl(seq=1, mode="pause", reason="operator"))
    q.submit([task("waiting")], T0)
    res = RecordingResidency()
    w = _worker(q, clock=SystemClock(), residency=res, exit_when_idle=False, status_every_s=0.2)
    thread = threading.Thread(target=w.run)
    thread.start()
    try:
        _until(lambda: (s := read_status(q.paths.worker_status("w1"))) is not None and s.state == "paused")
        write_json_dataclass(ctl_path, WorkerControl(seq=2, mode="pause", unload_seq=1))
        _until(lambda: ("force_unload", None) in res.calls)
        write_json_dataclass(ctl_path, WorkerControl(seq=3, mode="drain", unload_seq=1))
        thread.join(timeout=20)
        assert not thread.is_alive()
    finally:
        w.request_stop("test over")
        thread.join(timeout=20)
    assert q.get("waiting").status is TaskStatus.PENDING  # paused/draining: nothing new taken
    assert read_status(q.paths.worker_status("w1")).control_seq == 3
    assert events_of(tmp_path, "model_unloaded")[0]["model"] == "qwen2.5:7b"


def test_stop_request_hands_the_running_task_back(tmp_path):
    q = make_queue(tmp_path)
    handler = WaitForFileHandler()
    q.submit([task("long", params={"go": str(tmp_path / "never")})], T0)
    w = _worker(q, clock=SystemClock(), registry=HandlerRegistry(instances={TaskType.SHELL: handler}),
                stop_grace_s=0.0, exit_when_idle=False)
    thread = threading.Thread(target=w.run)
    thread.start()
    _until(lambda: handler.started == ["long"])
    w.request_stop("SIGTERM")
    thread.join(timeout=20)
    back = q.get("long")
    assert back.status is TaskStatus.PENDING and back.retry_count == 0
    assert back.attempts[-1].outcome == "released"


def test_stop_request_lets_the_task_finish_within_grace(tmp_path):
    q = make_queue(tmp_path)
    handler = WaitForFileHandler()
    go = tmp_path / "go"
    q.submit([task("finish-me", params={"go": str(go)}), task("not-started")], T0)
    w = _worker(q, clock=SystemClock(), registry=HandlerRegistry(instances={TaskType.SHELL: handler}),
                stop_grace_s=60.0, exit_when_idle=False)
    thread = threading.Thread(target=w.run)
    thread.start()
    _until(lambda: handler.started == ["finish-me"])
    w.request_stop("SIGTERM")
    go.touch()
    thread.join(timeout=20)
    assert q.get("finish-me").status is TaskStatus.COMPLETE
    assert q.get("not-started").status is TaskStatus.PENDING


class _FlakyQueue:
    """TaskQueue double: the first claim fails like a full disk, then it behaves."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.failures_left = 1

    def claim(self, *args, **kwargs):
        if self.failures_left:
            self.failures_left -= 1
            raise OSError(28, "No space left on device")
        return self.inner.claim(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_filesystem_error_is_reported_and_the_worker_carries_on(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("after-error")], T0)
    flaky = _FlakyQueue(q)
    w = Worker(flaky, HandlerRegistry(instances={TaskType.SHELL: NoopHandler()}), RecordingResidency(),
               FakeClock(T0), q.paths, EventLog(q.paths.events), "w1", (), WorkerProfile("w1"),
               WorkerSettings(exit_when_idle=True, poll_s=0.0))
    assert w.run() == 1
    assert q.get("after-error").status is TaskStatus.COMPLETE
    assert "No space left on device" in events_of(tmp_path, "worker_error")[0]["error"]


def test_status_shows_the_running_task_and_its_progress(tmp_path):
    class Talkative(WaitForFileHandler):
        def run(self, task, ctx):
            ctx.report_progress("partial output line", 12.5)
            return super().run(task, ctx)

    q = make_queue(tmp_path)
    handler = Talkative()
    go = tmp_path / "go"
    q.submit([task("chatty", name="say things", params={"go": str(go)})], T0)
    w = _worker(q, clock=SystemClock(), registry=HandlerRegistry(instances={TaskType.SHELL: handler}))
    thread = threading.Thread(target=w.run)
    thread.start()
    try:
        _until(lambda: (s := read_status(q.paths.worker_status("w1"))) is not None and s.progress is not None)
        s = read_status(q.paths.worker_status("w1"))
        assert (s.state, s.current_task, s.task_name, s.tokens_per_s) == ("busy", "chatty", "say things", 12.5)
        assert s.progress == "partial output line"
    finally:
        go.touch()
        thread.join(timeout=20)
    assert read_status(q.paths.worker_status("w1")).state == "stopping"


def test_cancelling_a_running_task_stops_it_and_the_worker_goes_on(tmp_path):
    q = make_queue(tmp_path)
    handler = WaitForFileHandler()
    q.submit([task("doomed", priority=9, params={"go": str(tmp_path / "never")}),
              task("next", params={"go": str(tmp_path)})], T0)
    w = _worker(q, clock=SystemClock(), registry=HandlerRegistry(instances={TaskType.SHELL: handler}),
                status_every_s=0.05)
    thread = threading.Thread(target=w.run)
    thread.start()
    try:
        _until(lambda: handler.started == ["doomed"])
        assert make_queue(tmp_path).cancel("doomed", time.time(), "operator")
        thread.join(timeout=20)
    finally:
        w.request_stop("test over", immediate=True)
        thread.join(timeout=20)
    assert q.get("doomed").error == "cancelled: operator"
    assert q.get("next").status is TaskStatus.COMPLETE
    assert events_of(tmp_path, "late_result_discarded")[0]["task_id"] == "doomed"


def test_an_idle_worker_stops_at_once_on_request_not_after_its_wait(tmp_path):
    q = make_queue(tmp_path)
    w = _worker(q, clock=SystemClock(), exit_when_idle=False, idle_wait_s=120.0, housekeeping_s=120.0,
                status_every_s=120.0, poll_s=120.0)
    thread = threading.Thread(target=w.run)
    thread.start()
    _until(lambda: (s := read_status(q.paths.worker_status("w1"))) is not None and s.state == "idle")
    w.request_stop("SIGTERM")  # what the signal handler does
    thread.join(timeout=30)  # far less than the 120 s wait: only the wake pipe can end it in time
    assert not thread.is_alive()
    assert read_status(q.paths.worker_status("w1")).state == "stopping"


def test_status_heartbeat_keeps_coming_while_busy_and_while_idle(tmp_path):
    q = make_queue(tmp_path)
    handler = WaitForFileHandler()
    go = tmp_path / "go"
    q.submit([task("long", params={"go": str(go)})], T0)
    w = _worker(q, clock=SystemClock(), registry=HandlerRegistry(instances={TaskType.SHELL: handler}),
                exit_when_idle=False, status_every_s=0.05, lease_s=60.0)
    thread = threading.Thread(target=w.run)
    thread.start()

    def beats_in(state: str) -> None:
        seen: set[float] = set()

        def more() -> bool:
            s = read_status(q.paths.worker_status("w1"))
            if s is not None and s.state == state:
                seen.add(s.heartbeat_at)
            return len(seen) >= 3

        _until(more)

    try:
        beats_in("busy")  # the handler blocks; the side thread still refreshes the status
        go.touch()
        beats_in("idle")
    finally:
        w.request_stop("test over", immediate=True)
        thread.join(timeout=20)


def test_a_degraded_card_is_reported_in_the_status(tmp_path):
    class LeakyResidency(RecordingResidency):
        degraded: str | None = None

        def finished(self, task, ok):
            super().finished(task, ok)
            self.degraded = "VRAM not freed after unload (5 s)"

    q = make_queue(tmp_path)
    q.submit([task("t1")], T0)
    w = _worker(q, registry=HandlerRegistry(instances={TaskType.SHELL: NoopHandler()}),
                residency=LeakyResidency())
    assert read_status(q.paths.worker_status("w1")) is None
    w.run()
    assert read_status(q.paths.worker_status("w1")).gpu_degraded == "VRAM not freed after unload (5 s)"


def test_an_unload_from_before_the_worker_started_is_not_replayed(tmp_path):
    """The supervisor keeps unload_seq in the control file across restarts; a new process must not redo it."""
    q = make_queue(tmp_path)
    q.paths.workers.mkdir(parents=True, exist_ok=True)
    write_json_dataclass(q.paths.worker_control("w1"), WorkerControl(seq=7, mode="run", unload_seq=2))
    res = RecordingResidency()
    _worker(q, residency=res).run()
    assert ("force_unload", None) not in res.calls
    assert events_of(tmp_path, "model_unloaded") == []


def test_a_control_file_that_is_not_text_does_not_kill_the_worker(tmp_path):
    q = make_queue(tmp_path)
    q.paths.workers.mkdir(parents=True, exist_ok=True)
    q.paths.worker_control("w1").write_bytes(b"\xff\xfe\xfa")  # json.loads raises UnicodeDecodeError here
    q.submit([task("still-runs")], T0)
    assert _worker(q).run() == 1
    assert q.get("still-runs").status is TaskStatus.COMPLETE


def test_a_result_that_cannot_be_recorded_does_not_leave_the_worker_busy_on_it(tmp_path):
    """complete/ unwritable (a full disk behaves the same): the worker lives on, and its status
    must not go on naming a task it no longer runs."""
    q = make_queue(tmp_path)
    q.submit([task("t1")], T0)
    q.paths.complete.rmdir()
    q.paths.complete.write_text("")  # recording the completion now raises NotADirectoryError
    registry = HandlerRegistry(instances={TaskType.SHELL: NoopHandler()})
    w = _worker(q, registry=registry, poll_s=0.01)
    w.run()
    assert events_of(tmp_path, "worker_error")  # reported, not fatal
    status = read_status(q.paths.worker_status("w1"))
    assert status.current_task is None


class _FinishedRaises(RecordingResidency):
    def finished(self, task, ok):
        raise RuntimeError("backend said 500")


def test_a_residency_that_fails_after_a_task_is_reported_not_hidden(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("t1")], T0)
    registry = HandlerRegistry(instances={TaskType.SHELL: NoopHandler()})
    assert _worker(q, registry=registry, residency=_FinishedRaises()).run() == 1
    assert q.get("t1").status is TaskStatus.COMPLETE  # the result still counts
    (err,) = events_of(tmp_path, "worker_error")
    assert err["task_id"] == "t1" and "RuntimeError: backend said 500" in err["error"]


def test_an_idle_worker_wakes_for_its_own_control_file_not_for_peers_status(tmp_path):
    """Every worker writes its status into state/workers/ several times a minute; an idle worker
    that woke on each of them would burn CPU for nothing on a big rig."""
    q = make_queue(tmp_path)
    ws = q.paths.workers
    ws.mkdir(parents=True, exist_ok=True)
    q.watch(ws, frozenset({q.paths.worker_control("w1").name}))
    assert q.index.live, "inotify is needed for this test (Linux)"

    def atomic_write(path):
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_text("{}")
        os.replace(tmp, path)

    atomic_write(q.paths.worker_status("w2"))
    atomic_write(q.paths.worker_control("w2"))
    assert q.wait_for_change(0.3) is False  # the events are already pending: only the filter keeps it asleep
    atomic_write(q.paths.worker_control("w1"))
    assert q.wait_for_change(5.0) is True
    q.submit([task("t1")], T0)
    assert q.wait_for_change(5.0) is True
    assert "t1" in q.index.by_id
