"""Approvals are decided once, across processes (issue 11, item 7).

Real processes race on one escalation against a local double of the provider API: the
decision and the send are transitions under the escalation's lock, so exactly one request
reaches the provider and the cost ledger gets one line, whoever races; the losers are told
who decided; every decision is one line in logs/audit.jsonl.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.cli.main import main
from engine.commands import CommandKind, make_command
from engine.escalation.decisions import AlreadyDecided
from engine.escalation.service import build_manager
from engine.escalation.store import PENDING, SENT, transition
from engine.model import Task, TaskClass, TaskType
from engine.paths import RigPaths
from engine.routing.nodes import EscalationConfig, load_routing
from engine.snapshot import SNAPSHOT_VERSION, Snapshot, write_snapshot
from engine.supervisor.pidfile import PidFile
from tests.doubles.provider_api import ProviderApiDouble

FORK = mp.get_context("fork")
RACERS = 4


@pytest.fixture()
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderApiDouble]:
    monkeypatch.setenv("RACE_KEY", "k-race")
    d = ProviderApiDouble(api_key="k-race", answer="Batch it.").start()
    yield d
    d.stop()


@pytest.fixture()
def rig(tmp_path: Path, api: ProviderApiDouble) -> tuple[RigPaths, Path, str]:
    """A rig with one pending escalation (for task ``ask``) and a galaxy.toml naming the double."""
    cfg = tmp_path / "galaxy.toml"
    cfg.write_text(f'[[node]]\nname = "cloud"\nendpoint = "{api.url}"\nbackend = "anthropic"\n'
                   f'model = "claude-test"\ntier = 2\nexternal = true\nauth_env = "RACE_KEY"\n'
                   f'price_in_per_mtok = 3.0\nprice_out_per_mtok = 15.0\n')
    paths = RigPaths(tmp_path / "rig").ensure()
    routing, esc_cfg = load_routing(cfg)
    task = Task(task_id="ask", name="hard", type=TaskType.LLM, task_class=TaskClass.LLM,
                params={"prompt": "Why is the queue slow?"})
    e = build_manager(paths, routing, esc_cfg).request(task, "requires_external", time.time())
    return paths, cfg, e.escalation_id


def _cli(root: Path, cfg: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["--root", str(root), "--config", str(cfg), *argv])
    return rc, out.getvalue(), err.getvalue()


def _racer(barrier: Any, root: str, cfg: str, argv: list[str], report: str) -> None:
    barrier.wait()  # every racer leaves the line together: the decisions really overlap
    rc, out, err = _cli(Path(root), Path(cfg), *argv)
    Path(report).write_text(json.dumps({"rc": rc, "out": out, "err": err}))
    sys.stdout.flush()
    os._exit(0)


def _race(tmp_path: Path, root: Path, cfg: Path, argvs: list[list[str]]) -> list[dict[str, Any]]:
    barrier = FORK.Barrier(len(argvs))
    reports = [tmp_path / f"racer{i}.json" for i in range(len(argvs))]
    procs = [FORK.Process(target=_racer, args=(barrier, str(root), str(cfg), argv, str(rep)))
             for argv, rep in zip(argvs, reports)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, "a racer crashed"
    return [json.loads(r.read_text()) for r in reports]


def _ledger(paths: RigPaths) -> list[dict[str, Any]]:
    path = paths.logs / "cost_ledger.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _decisions(paths: RigPaths) -> list[str]:
    if not paths.audit.exists():
        return []
    return [r["transition"] for r in map(json.loads, paths.audit.read_text().splitlines())
            if r.get("kind") == "escalation_decision"]


def test_racing_cli_approvals_without_a_supervisor_send_once(tmp_path, rig, api):
    paths, cfg, esc = rig
    results = _race(tmp_path, paths.root, cfg, [["approve", esc]] * RACERS)
    winners = [r for r in results if r["rc"] == 0]
    assert len(winners) == 1, results
    assert "no supervisor is running, so this CLI sent it: answered" in winners[0]["out"]
    for loser in (r for r in results if r["rc"] != 0):
        assert f"escalation {esc} was already approved by cli " in loser["err"], loser
    assert len(api.requests) == 1
    assert len(_ledger(paths)) == 1
    assert _decisions(paths) == ["approved", "sent", "answered"]


def test_approve_and_deny_racing_decide_exactly_one_way(tmp_path, rig, api):
    paths, cfg, esc = rig
    results = _race(tmp_path, paths.root, cfg, [["approve", esc], ["deny", esc, "--reason", "too dear"]] * 2)
    assert sum(r["rc"] == 0 for r in results) == 1, results
    decided = _decisions(paths)
    assert decided in (["approved", "sent", "answered"], ["denied"])
    assert len(api.requests) == len(_ledger(paths)) == (1 if decided[0] == "approved" else 0)
    verb = decided[0]
    assert all(f"was already {verb} by cli " in r["err"] for r in results if r["rc"] != 0), results


def test_an_approval_left_for_the_supervisor_is_sent_once_by_racing_senders(tmp_path, rig, api):
    paths, cfg, esc = rig
    rc, out, _ = _cli(paths.root, cfg, "approve", esc, "--leave-for-supervisor")
    assert rc == 0 and "recorded for the next supervisor to send (exactly once)" in out
    assert api.requests == [] and _decisions(paths) == ["approved"]
    # the next supervisor's send races a second approve from the CLI
    racers = FORK.Barrier(2)

    def sender() -> None:
        racers.wait()
        routing, esc_cfg = load_routing(cfg)
        build_manager(paths, routing, esc_cfg).send_approved(esc, time.time(), by="supervisor")
        os._exit(0)

    p = FORK.Process(target=sender)
    p.start()
    racers.wait()
    rc, _, err = _cli(paths.root, cfg, "approve", esc)
    p.join(60)
    assert rc == 1 and "was already approved by cli " in err
    assert len(api.requests) == 1 and len(_ledger(paths)) == 1
    assert _decisions(paths) == ["approved", "sent", "answered"]


def _fresh_snapshot(paths: RigPaths) -> None:
    write_snapshot(paths.snapshot, Snapshot(version=SNAPSHOT_VERSION, seq=1, taken_at=time.time(), rig="t",
                                            simulated=True, telemetry_status="simulated rig"))


def test_an_approval_just_after_galaxy_down_is_withdrawn_then_decided_here(tmp_path, rig, api):
    """The supervisor still holds its pid file and its last snapshot is fresh, but it no longer
    reads commands: the CLI withdraws its unacknowledged command and decides itself, so the
    answer printed is the truth and no later supervisor sends it a second time."""
    paths, cfg, esc = rig
    pid = PidFile(paths.supervisor_pid)
    pid.acquire()
    try:
        _fresh_snapshot(paths)
        rc, out, err = _cli(paths.root, cfg, "approve", esc, "--wait", "0.3")
    finally:
        pid.release()
    assert "the command was withdrawn (it will not be applied) and this CLI decides instead" in err
    assert rc == 0 and "this CLI sent it: answered" in out
    assert list(paths.commands.glob("*.json")) == []
    assert len(api.requests) == 1 and len(_ledger(paths)) == 1
    routing, esc_cfg = load_routing(cfg)
    m = build_manager(paths, routing, esc_cfg)  # the next supervisor: nothing left to send
    assert m.awaiting_send() == [] and m.recover_stranded(time.time()) == []
    assert len(api.requests) == 1


def test_supervisor_commands_tell_the_loser_who_decided(tmp_path, rig, api):
    from engine.escalation.cloud_tier import CloudTier
    from engine.supervisor.command_processor import Outcome

    paths, cfg, esc = rig
    routing, esc_cfg = load_routing(cfg)

    class NoQueue:
        def recent(self, state: str, limit: int) -> list[Task]:
            return []

        def get(self, task_id: str) -> Task | None:
            return None

        def retry(self, task_id: str, now: float) -> bool:
            return False

        def failed_stamp(self) -> int | None:
            return None

    tier = CloudTier(paths, routing, esc_cfg, NoQueue(), lambda *a: True, outcome=Outcome)
    try:
        now = time.time()
        first = tier._cmd_approve(make_command(CommandKind.APPROVE, esc, source="tui ann@rig"), now)
        second = tier._cmd_approve(make_command(CommandKind.APPROVE, esc, source="cli bob@rig"), now)
        deny = tier._cmd_deny(make_command(CommandKind.DENY, esc, source="cli bob@rig", reason="no"), now)
    finally:
        tier.close()  # waits for the send
    assert first.outcome == "ok" and "by tui ann@rig" in first.message
    assert second.outcome == "refused" and "was already approved by tui ann@rig at " in second.message
    assert deny.outcome == "refused" and "was already approved by tui ann@rig" in deny.message
    assert len(api.requests) == 1 and len(_ledger(paths)) == 1


def test_a_send_cut_short_by_a_dead_process_is_failed_never_resent(tmp_path, rig, api):
    paths, cfg, esc = rig
    routing, esc_cfg = load_routing(cfg)
    m = build_manager(paths, routing, esc_cfg)
    now = time.time()
    m.decide_approve(esc, now, "cli bob@rig")
    held, release = FORK.Event(), FORK.Event()

    def live_sender() -> None:  # holds the sending lock, as a process mid-request does
        lock = m.store.sending_lock(esc)
        lock.acquire()
        held.set()
        release.wait(30)
        os._exit(0)

    p = FORK.Process(target=live_sender)
    p.start()
    assert held.wait(30)
    e = m.store.get(esc)
    assert e is not None
    m.store.save(transition(e, SENT, now, "by a process that will die"))
    assert m.recover_stranded(now) == []  # its sender is alive: leave it
    release.set()
    p.join(30)  # the sender is gone; its lock with it
    failed = m.recover_stranded(now)
    assert [x.state for x in failed] == ["failed"] and "not sent again" in (failed[0].error or "")
    assert m.awaiting_send() == [] and api.requests == [] and _ledger(paths) == []
    with pytest.raises(AlreadyDecided):
        m.decide_approve(esc, now, "cli carl@rig")


def test_expiry_and_approval_race_one_way(tmp_path, rig, api):
    paths, cfg, esc = rig
    routing, _ = load_routing(cfg)
    m = build_manager(paths, routing, EscalationConfig(approval_timeout_s=0.0))
    e = m.store.get(esc)
    assert e is not None and e.state == PENDING
    expired = m.expire_due(e.expires_at or time.time())
    assert [x.state for x in expired] == ["expired"]
    with pytest.raises(AlreadyDecided) as exc:
        m.decide_approve(esc, time.time(), "cli late@rig")
    assert "was already expired at " in str(exc.value)
    assert api.requests == [] and _decisions(paths) == ["expired"]
