"""Fixtures for the TUI tests; helpers live in ``tuikit.py``."""

from __future__ import annotations

import time

import pytest


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clock labels are local time; pin the zone so screenshots match on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
