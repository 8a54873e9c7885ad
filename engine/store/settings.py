"""Where the cluster's state lives: ``[store]`` in galaxy.toml, or ``$GALAXY_STORE``.

No url: the file store under the rig's shared root (one rig, nothing to set up). A
``redis://host:port/db`` url: the Redis store, every key under ``galaxy:{cluster}:``, so several
rigs pointed at one Redis with one cluster name are one cluster. ``$GALAXY_STORE`` wins over
galaxy.toml (as ``$GALAXY_ROOT`` wins over ``[rig] root``); ``GALAXY_STORE=file`` forces the
file store. Checked when the config is loaded, each problem naming its key (or the variable).
No ``redis`` import here: a file-store rig never loads the client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

ENV_STORE = "GALAXY_STORE"
DEFAULT_CLUSTER = "galaxy"
SCHEMES = ("redis", "rediss", "unix")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""A rig or cluster name: it becomes part of Redis keys and of file names."""


def name_problem(what: str, name: object) -> str | None:
    """Why ``name`` cannot name a rig or a cluster (``what``), or None."""
    if isinstance(name, str) and NAME_RE.match(name):
        return None
    return (f"{what} name {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (it becomes part of keys and file names)")


def url_problem(url: object) -> str | None:
    """Why ``url`` is not a Redis url galaxy can use, or None."""
    if not isinstance(url, str):
        return f"must be a string like \"redis://host:6379/0\", got {type(url).__name__} {url!r}"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number in 0..65535
    except ValueError as exc:
        return f"{url!r} is not a valid url: {exc}"
    if parts.scheme not in SCHEMES:
        return f"{url!r} must start with redis://, rediss:// or unix:// (e.g. \"redis://host:6379/0\")"
    if parts.scheme == "unix":
        return None if parts.path else f"{url!r} names no socket path (unix:///run/redis.sock)"
    if not parts.hostname:
        return f"{url!r} names no host (redis://host:6379/0)"
    if port == 0:
        return f"{url!r}: port 0 is not a port"
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        return f"{url!r}: the database after the host must be a number (redis://host:6379/0), got {db!r}"
    return None


class StoreKind(StrEnum):
    """Which store holds the cluster's state."""

    FILE = "file"  # the shared root's files: one rig
    REDIS = "redis"  # a Redis server: a cluster of rigs


DEFAULT_KEEP_COMPLETED_S = 7 * 24 * 3600.0
"""How long the Redis store keeps a completed task's record (``[store] keep_completed_s``; 0: for ever)."""


@dataclass(frozen=True)
class StoreConfig:
    """``[store]``: ``url`` None is the file store."""

    url: str | None = None
    cluster: str = DEFAULT_CLUSTER
    origin: str = "no [store] url: the file store"
    keep_completed_s: float = DEFAULT_KEEP_COMPLETED_S
    """Redis only: a completed task's record (task, result, attempts) is removed this long after its
    completion by the supervisors' tick (engine/store/retention.py); the file store keeps complete/."""

    @property
    def kind(self) -> StoreKind:
        return StoreKind.FILE if self.url is None else StoreKind.REDIS

    def describe(self) -> str:
        """For people (``galaxy config show``, doctor): where the state is, without a password."""
        if self.url is None:
            return f"file store under the shared root ({self.origin})"
        return f"Redis {redact_url(self.url)}, cluster {self.cluster!r} ({self.origin})"


def redact_url(url: str) -> str:
    """The url with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def store_config_problems(table: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, why) for each bad key of ``[store]`` (engine.config reports them with their lines)."""
    out: list[tuple[str, str]] = []
    for key, value in table.items():
        if key == "url":
            why = url_problem(value)
            if why is not None:
                out.append((key, why))
        elif key == "cluster":
            why = name_problem("cluster", value)
            if why is not None:
                out.append((key, why))
        elif key == "keep_completed_s":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                out.append((key, f"must be a number of seconds >= 0 (0: keep for ever), got {value!r}"))
        else:
            out.append((key, "unknown key (known: cluster, keep_completed_s, url)"))
    return out


def parse_store_config(table: Mapping[str, Any], where: str = "galaxy.toml") -> StoreConfig:
    """``[store]`` once ``store_config_problems`` found nothing."""
    url = table.get("url")
    cluster = str(table.get("cluster", DEFAULT_CLUSTER))
    keep = float(table.get("keep_completed_s", DEFAULT_KEEP_COMPLETED_S))
    if not url:
        return StoreConfig(None, cluster, keep_completed_s=keep)
    return StoreConfig(str(url), cluster, f"{where} [store] url", keep)


class StoreEnvError(ValueError):
    """``$GALAXY_STORE`` holds something galaxy cannot use; the message names the variable."""


def effective_store(config: StoreConfig, environ: Mapping[str, str]) -> StoreConfig:
    """``$GALAXY_STORE`` (a url, or ``file``) over galaxy.toml's ``[store] url``; the cluster stays."""
    raw = environ.get(ENV_STORE, "").strip()
    if not raw:
        return config
    if raw == "file":
        return replace(config, url=None, origin=f"${ENV_STORE}=file")
    why = url_problem(raw)
    if why is not None:
        raise StoreEnvError(f"${ENV_STORE}: {why} (or set it to \"file\" for the file store)")
    return replace(config, url=raw, origin=f"${ENV_STORE}")
