"""Escalation end to end on a live simulated rig: an llm task that requires an external
model fails locally, the supervisor raises a pending escalation, nothing reaches the
provider until `galaxy approve`, and the answer becomes the task's result. A denied one
sends nothing. The provider is a local HTTP double of Anthropic's Messages API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.events import tail_events
from engine.paths import RigPaths
from tests.doubles.provider_api import ProviderApiDouble

REPO = Path(__file__).resolve().parents[2]


def wait_for(cond: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for: {what}")


def llm_task(task_id: str) -> dict[str, Any]:
    return {"task_id": task_id, "name": f"hard question {task_id}", "type": "llm", "task_class": "llm",
            "model": "qwen2.5:7b", "requires_external": True,
            "params": {"prompt": "Prove the scheduler never starves. My key is sk-ant-api03-abcdefghijklmnop"}}


def test_escalation_needs_approval_on_a_live_rig(tmp_path: Path) -> None:
    api = ProviderApiDouble(api_key="k-test", answer="It cannot starve: aging bounds every wait.").start()
    root = tmp_path / "shared"
    cfg = tmp_path / "galaxy.toml"
    cfg.write_text(f'[[node]]\nname = "claude"\nendpoint = "{api.url}"\nbackend = "anthropic"\n'
                   f'model = "claude-test"\ntier = 2\nexternal = true\nauth_env = "TEST_PROVIDER_KEY"\n'
                   f'price_in_per_mtok = 3.0\nprice_out_per_mtok = 15.0\n')
    env = dict(os.environ, TEST_PROVIDER_KEY="k-test")

    def galaxy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config", str(cfg),
                               *args], cwd=REPO, capture_output=True, text=True, timeout=60, env=env, check=False)

    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config", str(cfg),
                             "supervise", "--sim", "--gpus", "1", "--tick", "0.2"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: RigPaths(root).snapshot.exists(), "first snapshot")
        for tid in ("ask1", "ask2"):
            (tmp_path / f"{tid}.json").write_text(json.dumps(llm_task(tid)))
            assert galaxy("submit", str(tmp_path / f"{tid}.json")).returncode == 0

        def pending() -> list[dict[str, Any]]:
            out = galaxy("escalations", "--json")
            return [e for e in json.loads(out.stdout)["escalations"] if e["state"] == "pending"]

        esc = wait_for(lambda: len(pending()) == 2 and pending(), "two pending escalations")
        parked = wait_for(lambda: sorted(p.name for p in RigPaths(root).awaiting.glob("*.json")) or None,
                          "both tasks awaiting approval")
        assert parked == ["ask1.json", "ask2.json"] and not list(RigPaths(root).failed.glob("ask*.json"))
        kinds = {(e.get("task_id"), e.get("event_type")) for e in tail_events(RigPaths(root).events, 10_000)}
        assert ("ask1", "task_awaiting_approval") in kinds and ("ask1", "task_failed") not in kinds, \
            "its worker parked it at its failure (the supervisor's rule, GALAXY_ESCALATE_AFTER): never failed"
        assert api.requests == [], "nothing leaves the rig before approval"
        by_task = {e["task_id"]: e for e in esc}
        payload = json.dumps(by_task["ask1"]["payload"])
        assert "sk-ant-api03-abcdefghijklmnop" not in payload, "secrets are redacted in what would be sent"
        assert by_task["ask1"]["est_cost_usd"] > 0

        denied = galaxy("deny", by_task["ask2"]["escalation_id"], "--reason", "not needed")
        assert denied.returncode == 0, denied.stdout + denied.stderr
        racers = [subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config",
                                    str(cfg), "approve", by_task["ask1"]["escalation_id"]], cwd=REPO, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [(p.wait(timeout=60), *p.communicate()) for p in racers]  # two operators, one supervisor
        assert sorted(rc for rc, _, _ in outs) == [0, 1], outs
        loser = next(out for rc, out, _ in outs if rc == 1)
        assert "refused: escalation " in loser and " was already approved by cli " in loser, outs

        def done() -> dict[str, Any] | None:
            path = RigPaths(root).complete / "ask1.json"
            return json.loads(path.read_text()) if path.exists() else None

        task = wait_for(done, "ask1 completed with the escalation's answer")
        assert task["result"]["text"] == "It cannot starve: aging bounds every wait."
        assert task["result"]["advice_only"] is True
        assert len(api.requests) == 1 and api.requests[0]["path"] == "/v1/messages"
        assert api.requests[0]["body"] == by_task["ask1"]["payload"], "exactly what the operator saw"
        denied_task = json.loads((RigPaths(root).failed / "ask2.json").read_text())
        assert denied_task["error"].startswith("escalation denied by cli ") and denied_task["error"].endswith(
            ": not needed")  # it waited in tasks/awaiting/ until the deny, not in failed/
        ledger = (RigPaths(root).logs / "cost_ledger.jsonl").read_text().splitlines()
        assert len(ledger) == 1 and json.loads(ledger[0])["task_id"] == "ask1"
        audit = [json.loads(x) for x in RigPaths(root).audit.read_text().splitlines()]
        assert [(a["kind"], a["outcome"]) for a in audit if "command_id" in a] == [
            ("deny", "ok"), ("approve", "ok"), ("approve", "refused")]
        decisions = [(a["escalation_id"], a["transition"]) for a in audit if a["kind"] == "escalation_decision"]
        ask1, ask2 = by_task["ask1"]["escalation_id"], by_task["ask2"]["escalation_id"]
        assert decisions == [(ask2, "denied"), (ask1, "approved"), (ask1, "sent"), (ask1, "answered")]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            api.stop()
    assert len(api.requests) == 1, "nothing was sent after the denial"


def test_breaker_commands_reach_the_live_router(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    cfg = tmp_path / "galaxy.toml"
    cfg.write_text("")

    def galaxy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config", str(cfg),
                               *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)

    assert galaxy("cluster", "breaker", "gpu0", "open").returncode == 3, "no supervisor: said plainly"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config", str(cfg),
                             "supervise", "--sim", "--gpus", "1", "--tick", "0.2"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: RigPaths(root).snapshot.exists(), "first snapshot")
        forced = galaxy("cluster", "breaker", "gpu0", "open")
        assert forced.returncode == 0 and "forced open" in forced.stdout
        nodes = wait_for(lambda: [n for n in json.loads(galaxy("cluster", "status", "--json").stdout)["nodes"]
                                  if n["name"] == "gpu0" and n["breaker"] == "open"], "breaker open in snapshot")
        assert nodes[0]["tier"] == 0
        assert galaxy("cluster", "breaker", "ghost", "reset").returncode == 1
        assert galaxy("cluster", "breaker", "gpu0", "reset").returncode == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
