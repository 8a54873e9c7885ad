"""Secrets never reach the training log or a cloud provider in the clear."""

from __future__ import annotations

import json

import pytest

from engine.escalation.redact import REDACTED, redact
from engine.escalation.training_log import TrainingSampleLog
from engine.model import Task


@pytest.mark.parametrize("text, secret", [
    ("use key sk-ant-api03-AbCdEf0123456789xyz please", "sk-ant-api03-AbCdEf0123456789xyz"),
    ("OPENAI=sk-proj-abcdefghijklmnop1234", "sk-proj-abcdefghijklmnop1234"),
    ("aws AKIAABCDEFGHIJKLMNOP here", "AKIAABCDEFGHIJKLMNOP"),
    ("curl -H 'Authorization: Bearer abcdef0123456789abcdef'", "abcdef0123456789abcdef"),
    ("password = hunter2hunter2", "hunter2hunter2"),
    ("db: postgres://app:s3cretpw@db.local/x", "s3cretpw"),
    ("write to alice@example.org", "alice@example.org"),
    ("gh token ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghijklmnopqrstuvwxyz0123"),
    # environment-style names, where "_" hides the label from a \b word boundary
    ("export DB_PASSWORD=hunter2hunter2", "hunter2hunter2"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("OPENAI_API_KEY=abcd1234efgh5678", "abcd1234efgh5678"),
    ("GITHUB_TOKEN=abcdefabcdefabcdef", "abcdefabcdefabcdef"),
    # a scheme word before the credentials
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
])
def test_single_line_secrets(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and REDACTED in out


@pytest.mark.parametrize("text, fragments", [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\nAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----",
     ["b3BlbnNzaC1rZXktdjEAAAA", "AAAABG5vbmU="]),
    ("password:\n    correct-horse-battery", ["correct-horse-battery"]),
    ("Authorization: Bearer\n   eyJhbGciOiJIUzI1NiJ9abcdefghij", ["eyJhbGciOiJIUzI1NiJ9abcdefghij"]),
    ('key = "sk-ant-api03-abcdefgh" +\n      "ijklmnopqrstuvwx"', ["sk-ant-api03-abcdefgh", "ijklmnopqrstuvwx"]),
    ("export KEY=sk-proj-abcdefghij\\\nklmnopqrstuv", ["sk-proj-abcdefghij", "klmnopqrstuv"]),
])
def test_secrets_split_across_lines(text: str, fragments: list[str]) -> None:
    out = redact(text)
    for frag in fragments:
        assert frag not in out, out


def test_plain_text_is_untouched() -> None:
    text = "Summarise the meeting about the GPU rig's thermal limits.\nKeep it short."
    assert redact(text) == text


def test_training_log_redacts_and_honours_sensitive(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = TrainingSampleLog(tmp_path / "training_samples.jsonl")
    t = Task(task_id="t1", name="n", command="x", source="plan:a.md")
    log.record(t, prompt="my password: hunter2hunter2", response="ok bob@x.io", outcome="ok", at=1.0)
    secret = t.with_changes(task_id="t2", sensitive=True)
    log.record(secret, prompt="the whole patient record", response="diagnosis", outcome="ok", at=2.0)
    lines = [json.loads(x) for x in (tmp_path / "training_samples.jsonl").read_text().splitlines()]
    assert "hunter2hunter2" not in lines[0]["prompt"] and "bob@x.io" not in lines[0]["response"]
    assert lines[0]["source"] == "plan:a.md"
    assert lines[1]["sensitive"] is True
    assert "prompt" not in lines[1] and "response" not in lines[1]
    assert "patient" not in json.dumps(lines[1])
