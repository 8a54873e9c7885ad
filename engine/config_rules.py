"""The type and range of every number in galaxy.toml, checked when the file is loaded.

Why a table: a negative price, budget or threshold, or a string where seconds belong
("30s"), used to pass `galaxy doctor` and fail later inside the supervisor. Each rule says
what the value is (integer or number, its unit) and its range; ``problems`` returns one
message per bad key, so the loader can report all of them at once with their lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Num:
    """A number's type and range. ``low_open``: strictly greater than ``low``."""

    unit: str = ""
    integer: bool = False
    low: float | None = 0.0
    low_open: bool = False
    high: float | None = None

    def problem(self, v: Any) -> str | None:
        what = ("an integer" if self.integer else "a number") + (f" of {self.unit}" if self.unit else "")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (self.integer and not isinstance(v, int)):
            got = f"the string {v!r}" if isinstance(v, str) else f"{type(v).__name__} {v!r}"
            return f"must be {what}, got {got}"
        if not math.isfinite(v):
            return f"must be {what}, got {v!r}"
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            if self.low == 0:
                return f"must be {'positive' if self.low_open else 'zero or more'}, got {v!r}"
            return f"must be {'>' if self.low_open else '>='} {self.low:g}, got {v!r}"
        if self.high is not None and v > self.high:
            return f"must be at most {self.high:g}, got {v!r}"
        return None


SECONDS, POS_SECONDS = Num("seconds"), Num("seconds", low_open=True)
CELSIUS = Num("degrees C", low_open=True, high=150.0)
COUNT = Num(integer=True, low=1)

THRESHOLDS: dict[str, Num] = {
    "temp_hot_c": CELSIUS, "temp_resume_c": CELSIUS, "temp_alert_c": CELSIUS,
    "alert_window_s": SECONDS, "alert_clear_s": SECONDS, "heartbeat_silent_s": POS_SECONDS,
    "stall_window_s": POS_SECONDS, "failure_alert_count": COUNT, "failure_alert_window_s": POS_SECONDS,
    "restart_backoff_s": SECONDS, "restart_backoff_max_s": SECONDS, "fast_crash_s": SECONDS,
    "max_fast_crashes": COUNT, "lease_s": POS_SECONDS, "snapshot_interval_s": POS_SECONDS,
    "shutdown_grace_s": SECONDS,
}
SIM: dict[str, Num] = {
    "gpus": Num(integer=True, high=64), "vram_mb": Num("MiB", low_open=True), "power_limit_w": Num("W", low_open=True),
    "ambient_c": Num("degrees C", low=-40.0, high=60.0),
}
ROUTING: dict[str, Num] = {
    "breaker_failures": COUNT, "breaker_reset_s": POS_SECONDS, "breaker_reset_max_s": POS_SECONDS,
    "health_interval_s": POS_SECONDS, "request_timeout_s": POS_SECONDS,
    "long_prompt_tokens": Num("tokens", integer=True, low=1), "very_long_prompt_tokens": Num("tokens", integer=True, low=1),
}
ESCALATION: dict[str, Num] = {
    "after_local_failures": Num(integer=True), "approval_timeout_s": POS_SECONDS,
    "daily_budget_usd": Num("USD"), "max_output_tokens": Num("tokens", integer=True, low=1),
    "retention_days": Num("days", low_open=True),
}
NODE: dict[str, Num] = {
    "tier": Num(integer=True), "context_window": Num("tokens", integer=True, low=1),
    "max_concurrency": COUNT, "price_in_per_mtok": Num("USD per million tokens"),
    "price_out_per_mtok": Num("USD per million tokens"),
}
NODE_STRINGS = ("name", "endpoint", "backend", "model", "auth_env")
NODE_BOOLS = ("external",)

# (section, smaller, larger): the first must not exceed the second.
ORDERED = (
    ("thresholds", "restart_backoff_s", "restart_backoff_max_s"),
    ("routing", "breaker_reset_s", "breaker_reset_max_s"),
    ("routing", "long_prompt_tokens", "very_long_prompt_tokens"),
)


def problems(table: Mapping[str, Any], rules: Mapping[str, Num]) -> list[tuple[str, str]]:
    """(key, message) for every key of ``table`` that breaks its rule (unknown keys are the caller's)."""
    out = []
    for key, value in table.items():
        rule = rules.get(key)
        why = rule.problem(value) if rule is not None else None
        if why:
            out.append((key, why))
    return out


def node_problems(node: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Types and ranges of one ``[[node]]`` (names, backends and URLs are checked by routing.nodes)."""
    out = problems(node, NODE)
    for key in NODE_STRINGS:
        if key in node and (not isinstance(node[key], str) or not node[key].strip()):
            out.append((key, f"must be a non-empty string, got {node[key]!r}"))
    for key in NODE_BOOLS:
        if key in node and not isinstance(node[key], bool):
            out.append((key, f"must be true or false, got {node[key]!r}"))
    return out


def order_problems(section: str, table: Mapping[str, Any], defaults: Any) -> list[tuple[str, str]]:
    """The ``ORDERED`` pairs of ``section``, with defaults for keys the file leaves out."""
    out = []
    for sec, small, large in ORDERED:
        if sec != section or (small not in table and large not in table):
            continue
        a, b = table.get(small, getattr(defaults, small)), table.get(large, getattr(defaults, large))
        if Num().problem(a) or Num().problem(b):
            continue  # already reported as a bad value
        if a > b:
            out.append((large if large in table else small, f"{small} ({a!r}) must not exceed {large} ({b!r})"))
    return out
