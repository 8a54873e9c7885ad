"""Awaiting approval from the task's failure on (issue 12, item 7): a worker given the rule by its
supervisor (``CloudTier.worker_env`` -> ``GALAXY_ESCALATE_AFTER`` -> ``rule_from_env``) parks a task
that qualifies as it records the last failed attempt, so the task is never in failed/, never has a
failure event and its dependents are never failed; the cloud tier then raises the escalation and
attaches it. A real FileQueue, the supervisor's cloud tier and the provider API double
(tests/engine/test_awaiting_approval.py covers the tier parking a task from failed/)."""

from __future__ import annotations

import pytest
from queue_helpers import T0
from test_awaiting_approval import _events, _rig, api  # noqa: F401  (the provider double's fixture)

from engine.commands import CommandKind, make_command
from engine.escalation.rule import ENV_ESCALATE_AFTER, rule_from_env
from engine.model import TaskStatus
from tests.doubles.provider_api import ProviderApiDouble


def test_the_worker_parks_it_and_the_tier_raises_and_attaches_the_escalation(tmp_path, api: ProviderApiDouble):  # noqa: F811
    paths, q, tier = _rig(tmp_path, api, by_worker=True)
    try:
        (esc,) = tier.manager.pending()
        parked = q.get("ask")
        assert parked.status is TaskStatus.AWAITING_APPROVAL and parked.result["awaiting_escalation"] == esc.escalation_id
        assert q.get("after").status is TaskStatus.HELD and q.counts().total("failed") == 0
        assert _events(paths, "task_failed", "ask") == 0 and _events(paths, "task_failed", "after") == 0
        assert _events(paths, "task_awaiting_approval", "ask") == 1
        tier.tick(T0 + 5)  # the next scans raise nothing more
        assert len(tier.manager.store.for_task("ask")) == 1
    finally:
        tier.close()


def test_after_a_deny_a_local_retry_that_fails_again_is_failed_not_escalated_again(tmp_path,
                                                                                  api: ProviderApiDouble):  # noqa: F811
    _paths, q, tier = _rig(tmp_path, api, by_worker=True)
    try:
        (esc,) = tier.manager.pending()
        deny = make_command(CommandKind.DENY, esc.escalation_id, source="tui ann@rig", reason="too dear")
        assert tier._cmd_deny(deny, T0 + 10).outcome == "ok"
        assert q.retry("ask", T0 + 11)
        from queue_helpers import policy

        assert q.claim("w1", T0 + 12, policy(), 30.0).task_id == "ask"
        q.fail("ask", "w1", "no local tier can take it", T0 + 13, retryable=False,
               escalate=rule_from_env(tier.worker_env()))
        tier.tick(T0 + 14)
        failed = q.get("ask")
        assert failed.status is TaskStatus.FAILED and failed.error.startswith("no local tier can take it")
        assert len(tier.manager.store.for_task("ask")) == 1 and api.requests == []
    finally:
        tier.close()


@pytest.mark.parametrize(("env", "rule"), [({}, False), ({ENV_ESCALATE_AFTER: "2"}, True),
                                           ({ENV_ESCALATE_AFTER: "x"}, False), ({ENV_ESCALATE_AFTER: "-1"}, False)])
def test_the_rule_comes_from_the_supervisors_environment(env: dict[str, str], rule: bool) -> None:
    assert (rule_from_env(env) is not None) is rule


def test_workers_get_the_rule_only_when_a_provider_could_take_the_escalation(tmp_path, api: ProviderApiDouble):  # noqa: F811
    _paths, _q, tier = _rig(tmp_path, api)
    try:
        assert tier.worker_env() == {ENV_ESCALATE_AFTER: "2"}  # [escalation] after_local_failures
        tier.manager.providers = {}
        assert tier.worker_env() == {}
    finally:
        tier.close()


def _detach(paths, task_id: str) -> None:  # type: ignore[no-untyped-def]
    """The parked file as its worker wrote it: no escalation attached (a tier that died before attaching)."""
    import json

    path = paths.awaiting / f"{task_id}.json"
    data = json.loads(path.read_text())
    data["result"]["awaiting_escalation"] = ""
    path.write_text(json.dumps(data))


def test_a_tier_that_died_between_raising_and_attaching_attaches_the_same_one(tmp_path, api: ProviderApiDouble):  # noqa: F811
    paths, q, tier = _rig(tmp_path, api, by_worker=True)
    try:
        (esc,) = tier.manager.pending()
        _detach(paths, "ask")
        tier.tick(T0 + 10)
        assert q.get("ask").result["awaiting_escalation"] == esc.escalation_id  # not failed, not raised twice
        assert [e.escalation_id for e in tier.manager.store.for_task("ask")] == [esc.escalation_id]
    finally:
        tier.close()


def test_a_duplicate_raised_by_another_supervisor_is_denied_and_the_task_keeps_waiting(tmp_path,
                                                                                      api: ProviderApiDouble):  # noqa: F811
    """Two rigs' tiers raised one each for the same parked task at once; the other attached first.
    Denying ours (what the loser of the attach does) must leave the task waiting for the other's."""
    from dataclasses import replace

    paths, q, tier = _rig(tmp_path, api, by_worker=True)
    try:
        (mine,) = tier.manager.pending()
        theirs = replace(mine, escalation_id="esc-other00001")
        tier.manager.store.save(theirs)
        _detach(paths, "ask")
        assert q.awaiting.attach("ask", theirs.escalation_id, T0 + 9)
        lost = q.awaiting.attach("ask", mine.escalation_id, T0 + 10)
        assert not lost and theirs.escalation_id in lost.message
        tier.manager.deny(mine.escalation_id, T0 + 11, by="supervisor", reason=f"a duplicate: {lost.message}")
        parked = q.get("ask")
        assert parked.status is TaskStatus.AWAITING_APPROVAL
        assert parked.result["awaiting_escalation"] == theirs.escalation_id and q.get("after").status is TaskStatus.HELD
        assert _events(paths, "task_escalation_denied", "ask") == 0
    finally:
        tier.close()
