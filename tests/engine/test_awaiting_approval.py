"""Awaiting approval is its own task state (issue 12, item 7).

An llm task that fails locally and escalates leaves failed/ for tasks/awaiting/: it is not
counted as failed, raises no failure alert, is not retried by "retry all", and its
dependents are held. After a deny it is failed with "escalation denied by X: reason" and
``galaxy retry`` runs it locally; after an answer it completes and its dependents are
released once. A real FileQueue, the supervisor's cloud tier and the provider API double.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from queue_helpers import T0, make_queue, policy, task

from engine.cli.main import main
from engine.commands import CommandKind, make_command
from engine.config import Thresholds
from engine.escalation.cloud_tier import CloudTier
from engine.escalation.providers import AnthropicProvider
from engine.escalation.rule import rule_from_env
from engine.escalation.service import build_manager
from engine.events import tail_events
from engine.model import TaskClass, TaskStatus, TaskType
from engine.paths import RigPaths
from engine.routing.nodes import EscalationConfig, NodeConfig, RoutingConfig
from engine.supervisor.command_processor import Outcome
from engine.supervisor.health import failure_conditions
from tests.doubles.provider_api import ProviderApiDouble


@pytest.fixture()
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderApiDouble]:
    monkeypatch.setenv("AW_KEY", "k-aw")
    d = ProviderApiDouble(api_key="k-aw", answer="Use a smaller batch.").start()
    yield d
    d.stop()


def _rig(tmp_path: Path, api: ProviderApiDouble, cfg: EscalationConfig | None = None,  # type: ignore[no-untyped-def]
         t0: float = T0, *, by_worker: bool = False):
    """``by_worker``: the worker was given the rule (engine/escalation/rule.py, from the supervisor's
    environment) and parks the task at its failure; else it fails it and the cloud tier parks it."""
    paths = RigPaths(tmp_path / "rig").ensure()
    q = make_queue(paths.root)
    node = NodeConfig("cloud", api.url, "anthropic", "claude-x", 2, external=True, auth_env="AW_KEY",
                      price_in_per_mtok=3, price_out_per_mtok=15)
    routing = RoutingConfig(nodes=(node,))
    cfg = cfg or EscalationConfig()
    tier = CloudTier(paths, routing, cfg, q, q.resolve_failed, awaiting=q.awaiting, outcome=Outcome)
    tier.manager = build_manager(paths, routing, cfg,
                                 providers={"cloud": AnthropicProvider("cloud", api.url, "claude-x", "AW_KEY")},
                                 on_answer=tier._answered, on_denied=tier._denied,
                                 on_retry_local=tier._retry_local, on_failed=tier._send_failed)
    q.submit([task("ask", type=TaskType.LLM, task_class=TaskClass.LLM, requires_external=True, max_retries=0,
                   params={"prompt": "Why is the queue slow?"}),
              task("after", depends_on=("ask",))], t0)
    t = q.claim("w1", t0, policy(), 30.0)
    assert t is not None and t.task_id == "ask"
    if by_worker:
        q.fail("ask", "w1", "no local tier can take it", t0 + 1, retryable=False,
               escalate=rule_from_env(tier.worker_env()))
        assert q.get("after").status is TaskStatus.HELD  # never failed, not even for a tick
    else:
        q.fail("ask", "w1", "no local tier can take it", t0 + 1, retryable=False)
        assert q.get("after").status is TaskStatus.FAILED  # the worker's failure cascades at once
    tier.tick(t0 + 2)
    return paths, q, tier


def _events(paths: RigPaths, kind: str, task_id: str) -> int:
    return sum(1 for e in tail_events(paths.events, 10_000) if e.get("event_type") == kind
               and e.get("task_id") == task_id)


def test_an_escalated_task_awaits_approval_and_is_not_a_failure(tmp_path, api, capsys):
    paths, q, tier = _rig(tmp_path, api)
    try:
        (esc,) = tier.manager.pending()
        parked = q.get("ask")
        assert parked.status is TaskStatus.AWAITING_APPROVAL
        assert parked.result["awaiting_escalation"] == esc.escalation_id
        assert q.get("after").status is TaskStatus.HELD  # dependents stay held while it awaits
        counts = q.counts()
        assert counts.total("failed") == 0 and counts.by_state["awaiting"] == {"llm": 1}
        assert failure_conditions(q.recent("failed", 50), Thresholds(failure_alert_count=1), T0 + 3) == []
        assert q.retry_all_failed(T0 + 3) == []
        assert _events(paths, "task_awaiting_approval", "ask") == 1
        assert main(["--root", str(paths.root), "status"]) == 0
        out = capsys.readouterr().out
        assert "awaiting: 1" in out and "failed: 0" in out
        assert any(line.split()[:2] == ["ask", esc.escalation_id] for line in out.splitlines())
        assert main(["--root", str(paths.root), "retry", "ask"]) == 1
        assert f"ask is awaiting approval of escalation {esc.escalation_id}" in capsys.readouterr().err
        assert main(["--root", str(paths.root), "cancel", "ask"]) == 1
        assert "ask is awaiting approval of its escalation" in capsys.readouterr().err
        tier.tick(T0 + 5)  # the next scans leave it where it is
        assert q.get("ask").status is TaskStatus.AWAITING_APPROVAL and api.requests == []
    finally:
        tier.close()


def test_a_deny_fails_it_with_who_and_why_and_retry_runs_it_locally(tmp_path, api, capsys):
    paths, q, tier = _rig(tmp_path, api)
    try:
        (esc,) = tier.manager.pending()
        cmd = make_command(CommandKind.DENY, esc.escalation_id, source="tui ann@rig", reason="too dear")
        assert tier._cmd_deny(cmd, T0 + 10).outcome == "ok"
        failed = q.get("ask")
        assert failed.status is TaskStatus.FAILED and failed.error == "escalation denied by tui ann@rig: too dear"
        assert q.get("after").status is TaskStatus.FAILED  # its dependent follows it, for retry to bring back
        assert q.counts().by_state.get("awaiting", {}) == {} and q.counts().total("failed") == 2
        assert main(["--root", str(paths.root), "retry", "ask"]) == 0
        assert q.get("ask").status is TaskStatus.PENDING and q.get("after").status is TaskStatus.HELD
        tier.tick(T0 + 20)
        assert q.get("ask").status is TaskStatus.PENDING and api.requests == []  # not escalated again
    finally:
        tier.close()


def test_an_answer_completes_it_and_releases_its_dependents_once(tmp_path, api):
    paths, q, tier = _rig(tmp_path, api)
    try:
        (esc,) = tier.manager.pending()
        ok = tier._cmd_approve(make_command(CommandKind.APPROVE, esc.escalation_id, source="cli bob@rig"), T0 + 10)
        assert ok.outcome == "ok"
    finally:
        tier.close()  # waits for the send
    done = q.get("ask")
    assert done.status is TaskStatus.COMPLETE and done.result["text"] == "Use a smaller batch."
    assert q.get("after").status is TaskStatus.PENDING
    assert _events(paths, "task_released", "after") == 1 and _events(paths, "task_completed", "ask") == 1
    counts = q.counts()
    assert counts.by_state.get("awaiting", {}) == {} and counts.total("failed") == 0 and counts.total("complete") == 1
    assert len(api.requests) == 1


def test_a_send_that_fails_puts_it_back_in_failed(tmp_path, api):
    _paths, q, tier = _rig(tmp_path, api)
    api.fail_status = 529
    try:
        (esc,) = tier.manager.pending()
        tier._cmd_approve(make_command(CommandKind.APPROVE, esc.escalation_id, source="cli bob@rig"), T0 + 10)
    finally:
        tier.close()
    failed = q.get("ask")
    assert failed.status is TaskStatus.FAILED and failed.error.startswith(f"escalation {esc.escalation_id} failed:")
    assert q.counts().by_state.get("awaiting", {}) == {}


def test_expiry_with_retry_local_queues_it_again(tmp_path, api):
    _paths, q, tier = _rig(tmp_path, api, EscalationConfig(approval_timeout_s=5.0, on_timeout="retry_local"))
    try:
        tier.tick(T0 + 60)
        assert q.get("ask").status is TaskStatus.PENDING and q.get("after").status is TaskStatus.HELD
        assert q.counts().by_state.get("awaiting", {}) == {}
    finally:
        tier.close()


def test_a_park_cut_short_is_finished_at_start(tmp_path, api):
    """A crash between writing awaiting/ and leaving failed/: the next cloud tier finishes it."""
    paths, q, tier = _rig(tmp_path, api)
    tier.close()
    parked = (paths.awaiting / "ask.json").read_bytes()
    q.awaiting.fail("ask", "no local tier can take it", T0 + 3, event="task_failed")  # as it was before
    (paths.awaiting / "ask.json").write_bytes(parked)  # both copies, as a crash would leave them
    fresh = CloudTier(paths, tier.routing, EscalationConfig(), q, q.resolve_failed, awaiting=q.awaiting,
                      outcome=Outcome)
    fresh.manager = tier.manager
    try:
        fresh.tick(T0 + 4)
    finally:
        fresh.close()
    assert q.get("ask").status is TaskStatus.AWAITING_APPROVAL and not (paths.failed / "ask.json").exists()
    assert q.get("after").status is TaskStatus.HELD and q.counts().total("failed") == 0


def test_cli_deny_without_a_supervisor_fails_it_with_who_and_why(tmp_path, api, capsys):
    import time

    paths, q, tier = _rig(tmp_path, api, t0=time.time() - 10)  # the CLI decides at the real time
    tier.close()
    (esc,) = tier.manager.pending()
    cfg = tmp_path / "galaxy.toml"
    cfg.write_text(f'[[node]]\nname = "cloud"\nendpoint = "{api.url}"\nbackend = "anthropic"\n'
                   f'model = "claude-x"\ntier = 2\nexternal = true\nauth_env = "AW_KEY"\n')
    rc = main(["--root", str(paths.root), "--config", str(cfg), "deny", esc.escalation_id, "--reason", "not now"])
    assert rc == 0
    failed = q.get("ask")
    assert failed.status is TaskStatus.FAILED
    assert failed.error.startswith("escalation denied by cli ") and failed.error.endswith(": not now")
    assert q.counts().by_state.get("awaiting", {}) == {} and api.requests == []


def test_a_decision_the_parked_task_missed_is_applied_by_the_next_reconcile(tmp_path, api):
    """Decided by a process that did not move the task (a deny in the instant it was parked):
    the cloud tier's reconcile (at start, after each park, once a minute) applies it."""
    paths, q, tier = _rig(tmp_path, api)
    try:
        (esc,) = tier.manager.pending()
        bare = build_manager(paths, tier.routing, tier.manager.config)  # no callbacks: the task stays parked
        bare.deny(esc.escalation_id, T0 + 3, by="cli carl@rig", reason="no")
        assert q.get("ask").status is TaskStatus.AWAITING_APPROVAL
        tier.tick(T0 + 120)
        failed = q.get("ask")
        assert failed.status is TaskStatus.FAILED and failed.error == "escalation denied by cli carl@rig: no"
    finally:
        tier.close()
