"""``[metrics]`` in galaxy.toml: where the supervisor serves /metrics.

On by default at 127.0.0.1:9464 (docs/metrics.md says why): localhost only, so nothing
leaves the rig unless the operator widens it; ``listen = ""`` turns the endpoint off.
Kept free of ``prometheus_client`` so ``engine.config`` can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:9464"


@dataclass(frozen=True)
class MetricsConfig:
    listen: str = DEFAULT_LISTEN  # "host:port", "[v6]:port", or "" (off)

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, or None when metrics are off."""
        return parse_listen(self.listen)


def parse_listen(value: str) -> tuple[str, int] | None:
    """``"127.0.0.1:9464"`` -> ("127.0.0.1", 9464); ``""`` -> None; ValueError says what is wrong."""
    text = value.strip()
    if not text:
        return None
    host, sep, port_s = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"must be \"host:port\" (like {DEFAULT_LISTEN!r}) or \"\" to turn metrics off, got {value!r}")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError(f"an IPv6 host goes in brackets, like \"[::1]:9464\", got {value!r}")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 host goes in brackets, like \"[::1]:9464\", got {value!r}")
    if not port_s.isdigit() or not 1 <= int(port_s) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535, got {port_s!r}")
    return host, int(port_s)


def listen_problem(value: Any) -> str | None:
    """The message for a bad ``metrics.listen`` (None: fine), in config_rules' style."""
    if not isinstance(value, str):
        return f"must be a string like {DEFAULT_LISTEN!r} (or \"\" for off), got {type(value).__name__} {value!r}"
    try:
        parse_listen(value)
    except ValueError as exc:
        return str(exc)
    return None
