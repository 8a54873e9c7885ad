"""The repeated-failure alert counts a plan's fan-out instances (``boom[a]``, ``boom[b]``) as one kind."""

from engine.config import Thresholds
from engine.model import Attempt, Task, TaskStatus
from engine.supervisor.health import base_name, failure_conditions


def failed(task_id: str, name: str, ended_at: float) -> Task:
    return Task(task_id=task_id, name=name, command="false", status=TaskStatus.FAILED, error="exit 1",
                attempts=(Attempt(number=1, worker_id="w0", started_at=ended_at - 1, ended_at=ended_at,
                                  outcome="error", error="exit 1"),))


def test_base_name_strips_a_fan_out_key_and_a_trailing_number():
    assert base_name("boom[a]") == base_name("boom[b]") == "boom"
    assert base_name("job[intro.wav]") == "job"
    assert base_name("job-3") == base_name("job 12") == "job"
    assert base_name("clip-2[x]") == "clip"
    assert base_name("[a]") == "[a]"  # nothing left: the name itself
    assert base_name("a[b]c") == "a[b]c"  # brackets inside a name are part of it


def test_three_fan_out_failures_raise_one_alert_for_their_base_name():
    th = Thresholds()
    tasks = [failed(f"b1.boom.{k}", f"boom[{k}]", 100.0 + i) for i, k in enumerate("abc")]
    (cond,) = failure_conditions(tasks, th, now=110.0)
    assert cond.active and cond.key == "task_failures:boom"
    assert "3 'boom' tasks failed" in cond.message


def test_two_different_fan_outs_are_counted_apart():
    th = Thresholds()
    tasks = [failed("b.x.a", "boom[a]", 100.0), failed("b.x.b", "boom[b]", 100.0), failed("b.y.a", "bang[a]", 100.0)]
    conds = {c.key: c.active for c in failure_conditions(tasks, th, now=110.0)}
    assert conds == {"task_failures:boom": False, "task_failures:bang": False}
