"""The supervisor's per-model demand learner (engine/supervisor/model_demand.py) over a real
events.jsonl written by the real EventLog: run times from completions, workers busy from the
last hour's claimable work, and a log that is appended to, truncated, rotated or dirty."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.events import EventLog
from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.scheduling.costs import SwitchCosts
from engine.supervisor.model_demand import ModelDemand, QueueModelLookup

T0 = 1_700_000_000.0
QWEN = "qwen2.5:7b"
WHISPER = "whisper-small.en"
PRIORS = SwitchCosts()  # qwen 60 s, whisper 60 s, mpnet 2 s typical; unknown 60 s


class DictLookup:
    """A ModelLookup double: the models a queue would report, and how many ids it was asked."""

    def __init__(self, models: dict[str, str | None]) -> None:
        self.known = models
        self.asked = 0

    def models(self, task_ids: Sequence[str], budget: int) -> dict[str, str | None]:
        ids = list(task_ids)[:budget]
        self.asked += len(ids)
        return {i: self.known.get(i) for i in ids}


def learner(path: Path, lookup: DictLookup, **kw) -> ModelDemand:  # type: ignore[no-untyped-def]
    return ModelDemand(path, lookup, n_groups=kw.pop("n_groups", 4), priors=PRIORS, **kw)


def submit(log: EventLog, at: float, *ids: str, kind: str = "task_submitted") -> None:
    for i in ids:
        log.emit(kind, at=at, task_id=i, task_class="llm")


def complete(log: EventLog, at: float, task_id: str, run_s: float) -> None:
    log.emit("task_completed", at=at, task_id=task_id, worker_id="gpu0", duration_ms=run_s * 1000.0)


@pytest.fixture
def log(tmp_path: Path) -> EventLog:
    return EventLog(tmp_path / "events.jsonl")


def qwen_ids(n: int, prefix: str = "q") -> dict[str, str | None]:
    return {f"{prefix}{i}": QWEN for i in range(n)}


def test_claimable_work_at_the_prior_then_at_the_learned_run_time(log: EventLog) -> None:
    ids = qwen_ids(30)
    demand = learner(log.path, DictLookup(ids))
    submit(log, T0, *ids)
    v = demand.view(T0 + 1)[QWEN]
    assert (v.claimable, v.task_s, v.workers_busy) == (30, None, 0.5)  # 30 x 60 s prior / 3600 s
    for k, run_s in enumerate((110.0, 120.0, 130.0)):
        complete(log, T0 + 200 + k, f"q{k}", run_s)
    v = demand.view(T0 + 300)[QWEN]
    assert (v.task_s, v.task_s_samples) == (120.0, 3)
    assert v.workers_busy == 1.0  # the whole window re-priced at the learned 120 s


def test_few_samples_are_tempered_by_the_table_and_busy_is_capped_at_the_groups(log: EventLog) -> None:
    ids = qwen_ids(500)
    demand = learner(log.path, DictLookup(ids), n_groups=3)
    submit(log, T0, *ids)
    complete(log, T0 + 1, "q0", 180.0)  # a first task that paid a cold load
    v = demand.view(T0 + 2)[QWEN]
    assert v.task_s == 120.0  # median of (180, 60 prior), not 180
    assert v.workers_busy == 3.0


def test_work_leaves_the_window_after_an_hour(log: EventLog) -> None:
    demand = learner(log.path, DictLookup({"a": QWEN, "b": QWEN, "w": WHISPER}))
    submit(log, T0, "a")
    submit(log, T0 + 1800, "b", "w")
    assert demand.view(T0 + 3599)[QWEN].claimable == 2
    later = demand.view(T0 + 3601)
    assert later[QWEN].claimable == 1 and later[WHISPER].claimable == 1
    assert demand.view(T0 + 5401) == {}  # nothing recent, nothing learned: not listed


def test_a_task_counts_once_per_window_however_often_it_comes_back(log: EventLog) -> None:
    demand = learner(log.path, DictLookup({"a": QWEN}))
    submit(log, T0, "a")
    submit(log, T0 + 10, "a", kind="task_handed_back")
    submit(log, T0 + 20, "a", kind="task_promoted")
    assert demand.view(T0 + 30)[QWEN].claimable == 1
    submit(log, T0 + 4000, "a", kind="task_retried")  # an hour later it is new work again
    assert demand.view(T0 + 4001)[QWEN].claimable == 1


def test_events_that_do_not_make_work_claimable_are_ignored(log: EventLog) -> None:
    demand = learner(log.path, DictLookup({"h": QWEN, "c": QWEN}))
    submit(log, T0, "h", kind="task_held")
    submit(log, T0, "c", kind="task_claimed")
    log.emit("task_completed", at=T0, task_id="c", resolved_by="escalation")  # no run time
    assert demand.view(T0 + 1) == {}


def test_shell_tasks_without_a_model_are_not_demand(log: EventLog) -> None:
    demand = learner(log.path, DictLookup({"s": None}))
    submit(log, T0, "s")
    complete(log, T0 + 5, "s", 5.0)
    assert demand.view(T0 + 6) == {}


def test_an_event_that_names_its_model_needs_no_lookup(log: EventLog) -> None:
    lookup = DictLookup({})
    demand = learner(log.path, lookup)
    log.emit("task_submitted", at=T0, task_id="n", model=WHISPER)
    assert demand.view(T0 + 1)[WHISPER].claimable == 1
    assert lookup.asked == 0


def test_reads_only_what_was_appended_and_waits_for_an_unfinished_line(log: EventLog) -> None:
    lookup = DictLookup(qwen_ids(3))
    demand = learner(log.path, lookup)
    submit(log, T0, "q0")
    assert demand.view(T0 + 1)[QWEN].claimable == 1
    submit(log, T0 + 2, "q1")
    with open(log.path, "ab") as fh:  # a writer caught half-way through its line
        fh.write(b'{"timestamp":"2023-11-14T22:13:25.000Z","event_type":"task_submitted","task_id":"q2"')
    assert demand.view(T0 + 3)[QWEN].claimable == 2
    with open(log.path, "ab") as fh:
        fh.write(b"}\n")
    assert demand.view(T0 + 4)[QWEN].claimable == 3
    assert lookup.asked == 3 and demand.bad_lines == 0


def test_garbage_lines_are_counted_and_skipped(log: EventLog) -> None:
    demand = learner(log.path, DictLookup({"a": QWEN, "b": QWEN}))
    submit(log, T0, "a")
    with open(log.path, "ab") as fh:
        fh.write(b"not json at all\n[1, 2]\n\xff\xfe\n"
                 b'{"event_type":"task_submitted","task_id":"x","timestamp":"yesterday"}\n'
                 b'{"event_type":"task_submitted","task_id":7,"timestamp":"2023-11-14T22:13:20.000Z"}\n')
    submit(log, T0 + 1, "b")
    assert demand.view(T0 + 2)[QWEN].claimable == 2
    assert demand.bad_lines == 5


def test_a_truncated_log_is_read_again_from_its_start(log: EventLog) -> None:
    ids = qwen_ids(40)
    demand = learner(log.path, DictLookup({**ids, "w": WHISPER}))
    submit(log, T0, *ids)
    assert demand.view(T0 + 1)[QWEN].claimable == 40
    with open(log.path, "wb"):
        pass  # truncated in place (the same inode)
    submit(log, T0 + 2, "w")
    v = demand.view(T0 + 3)
    assert v[WHISPER].claimable == 1 and v[QWEN].claimable == 40  # what it learned stays


def test_a_log_rewritten_in_place_and_grown_past_the_offset_is_read_again(log: EventLog) -> None:
    ids = qwen_ids(5)
    jobs = {f"whisper-job-{i}": WHISPER for i in range(30)}
    demand = learner(log.path, DictLookup({**ids, **jobs}))
    submit(log, T0, *ids)
    assert demand.view(T0 + 1)[QWEN].claimable == 5
    old_size = log.path.stat().st_size
    with open(log.path, "wb"):
        pass
    submit(log, T0 + 2, *jobs)
    assert log.path.stat().st_size > old_size
    demand.view(T0 + 3)  # notices the rewrite
    assert demand.view(T0 + 4)[WHISPER].claimable == 30
    assert demand.rewinds == 1 and demand.bad_lines == 0


def test_a_megabyte_without_a_newline_is_skipped_not_re_read_forever(log: EventLog) -> None:
    demand = learner(log.path, DictLookup({"a": QWEN}))
    with open(log.path, "ab") as fh:
        fh.write(b"x" * (1 << 20) + b"yyy\n")
    submit(log, T0, "a")
    views = [demand.view(T0 + k) for k in range(1, 4)]
    assert views[-1][QWEN].claimable == 1
    assert demand.bad_lines == 1 and demand.rewinds == 0


def test_a_rotated_log_is_followed_to_the_new_file(log: EventLog, tmp_path: Path) -> None:
    demand = learner(log.path, DictLookup({"a": QWEN, "b": QWEN}))
    submit(log, T0, "a")
    assert demand.view(T0 + 1)[QWEN].claimable == 1
    os.rename(log.path, tmp_path / "events.jsonl.1")
    submit(EventLog(log.path), T0 + 2, "b")
    assert demand.view(T0 + 3)[QWEN].claimable == 2


def test_a_restart_remembers_the_last_hour_from_the_log(log: EventLog) -> None:
    ids = qwen_ids(20)
    submit(log, T0 - 7200, "old")  # two hours ago: out of the window
    submit(log, T0, *ids)
    for k in range(5):
        complete(log, T0 + 100 + k, f"q{k}", 90.0)
    first = learner(log.path, DictLookup({**ids, "old": QWEN}))
    seen = first.view(T0 + 200)
    restarted = learner(log.path, DictLookup({**ids, "old": QWEN}))
    assert restarted.view(T0 + 200) == seen
    assert seen[QWEN].claimable == 20 and seen[QWEN].task_s == 90.0


def test_the_seed_reads_only_the_tail_of_a_big_log(log: EventLog) -> None:
    ids = qwen_ids(200)
    submit(log, T0, *ids)
    size = log.path.stat().st_size
    demand = learner(log.path, DictLookup(ids), seed_max_bytes=size // 4)
    n = demand.view(T0 + 1)[QWEN].claimable
    assert 40 <= n < 50  # about a quarter of the lines, the cut first one dropped
    assert demand.bad_lines == 0


def test_a_burst_is_resolved_over_several_updates_without_losing_order(log: EventLog) -> None:
    ids = qwen_ids(1200)
    lookup = DictLookup(ids)
    demand = learner(log.path, lookup)
    submit(log, T0, *ids)
    counts = [demand.view(T0 + k)[QWEN].claimable for k in range(1, 4)]
    assert counts == [500, 1000, 1200]


def test_the_queue_lookup_finds_models_of_waiting_and_finished_tasks(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared").ensure()
    q = FileQueue(paths, use_inotify=False)
    try:
        tasks = [Task(task_id=f"e{i}", name="e", command="true", task_class=TaskClass.SCRIPT,
                      model="all-mpnet-base-v2")
                 for i in range(20)]
        tasks.append(Task(task_id="sh", name="shell", command="true"))
        q.submit(tasks, T0)
        done = q.claim("gpu0", T0 + 1, lambda c, now: [x for x in c if x.model], 60.0)
        assert done is not None
        q.complete(done.task_id, "gpu0", {}, T0 + 3)
        demand = ModelDemand(paths.events, QueueModelLookup(q, paths.queue), n_groups=4, priors=PRIORS)
        v = demand.view(T0 + 4)["all-mpnet-base-v2"]
        assert (v.claimable, v.task_s_samples) == (20, 1)
        assert "" not in demand.view(T0 + 5)  # the shell task has no model
    finally:
        q.close()


def test_the_queue_names_the_model_in_its_events_so_no_lookup_is_needed(tmp_path: Path) -> None:
    from engine.model import Task, TaskClass
    from engine.paths import RigPaths
    from engine.queue.filequeue import FileQueue

    paths = RigPaths(tmp_path).ensure()
    queue = FileQueue(paths, use_inotify=False, events=EventLog(paths.events))
    queue.submit([Task(task_id="a", name="a", command="true", task_class=TaskClass.LLM, model=QWEN),
                  Task(task_id="b", name="b", command="true", task_class=TaskClass.LLM, model=QWEN,
                       depends_on=("a",))], T0)
    t = queue.claim("w1", T0, lambda c, now: c, 60.0)
    assert t is not None and t.task_id == "a"
    queue.complete("a", "w1", {}, T0 + 1)  # releases b

    class NoLookup:
        def models(self, task_ids, budget):  # type: ignore[no-untyped-def]
            raise AssertionError(f"looked up {list(task_ids)}: the events should have named the model")

    demand = learner(paths.events, NoLookup())  # type: ignore[arg-type]
    assert demand.view(T0 + 2)[QWEN].claimable == 2  # a submitted, b released
