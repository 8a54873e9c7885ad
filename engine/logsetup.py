"""One logging set-up for the supervisor and the workers.

Every process logs through the standard ``logging`` module. ``setup_logging`` sends it to:

- a file of JSON lines (time, level, logger, message, fields), rotated by size. Each process
  rotates only its own file (the supervisor ``logs/supervisor.log``, a worker
  ``logs/workers/<id>.log``), so ``RotatingFileHandler`` is safe: no other writer holds it;
- or stderr: plain ``<N>message key=value`` lines when stderr is the journal (systemd sets
  ``$JOURNAL_STREAM`` to stderr's device:inode; journald reads ``<N>`` as the priority and
  stamps the time itself), JSON lines otherwise.

Log files live in the shared root, where anyone on the rig can plant a symlink or a FIFO at a
log's name: every log file is opened through ``safeio.open_append`` (never followed, never
waited on); a refused file sends the log to stderr with a warning naming it, and rotation and
truncation act only on regular files (``lstat``), never on what a link points at.

Fields are what the call passes in ``extra={"fields": {...}}`` (``log_fields`` builds it).
``[log]`` in galaxy.toml sets the level and the rotation size (``LogConfig``).
"""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from engine import safeio

LEVELS = ("debug", "info", "warning", "error")
_OURS: list[logging.Handler] = []
CHATTY_LIBRARIES = ("httpx", "httpcore", "urllib3", "filelock", "asyncio", "markdown_it")
_SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


@dataclass(frozen=True)
class LogConfig:
    """galaxy.toml's ``[log]`` table."""

    level: str = "info"
    max_mb: float = 10.0  # a log file is rotated when it would pass this size
    backups: int = 5  # rotated files kept: supervisor.log.1 .. .5
    events_max_mb: float = 50.0  # logs/events.jsonl (the supervisor rotates it)
    events_backups: int = 3

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1024 * 1024)

    @property
    def events_max_bytes(self) -> int:
        return int(self.events_max_mb * 1024 * 1024)


def log_config_problems(table: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, why) for each bad key of ``[log]`` (engine.config reports them with their lines)."""
    out: list[tuple[str, str]] = []
    known = set(LogConfig.__dataclass_fields__)
    for key, v in table.items():
        if key not in known:
            out.append((key, f"unknown key (known: {', '.join(sorted(known))})"))
        elif key == "level":
            if not isinstance(v, str) or v.lower() not in LEVELS:
                out.append((key, f"must be one of {', '.join(LEVELS)}, got {v!r}"))
        elif key in ("backups", "events_backups"):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100:
                out.append((key, f"must be an integer from 0 to 100, got {v!r}"))
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 100_000:
            out.append((key, f"must be a number of MiB above 0 (at most 100000), got {v!r}"))
    return out


def parse_log_config(table: Mapping[str, Any]) -> LogConfig:
    """``[log]`` once ``log_config_problems`` found nothing."""
    kw: dict[str, Any] = {k: v for k, v in table.items() if k in LogConfig.__dataclass_fields__}
    if "level" in kw:
        kw["level"] = str(kw["level"]).lower()
    return LogConfig(**kw)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (epoch s), level, logger, message, fields (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        rec: dict[str, Any] = {"time": round(record.created, 3), "level": record.levelname.lower(),
                               "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping) and fields:
            rec["fields"] = dict(fields)
        if record.exc_info:
            rec["exc"] = self.formatException(record.exc_info)
        return json.dumps(rec, default=str, separators=(",", ":"))


class JournalFormatter(logging.Formatter):
    """``<6>logger: message key=value``: no time (journald stamps it), the priority as a prefix."""

    def format(self, record: logging.LogRecord) -> str:
        prio = _SYSLOG_PRIORITY.get(record.levelno, 6)
        text = f"<{prio}>{record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            text += "".join(f" {k}={_plain(v)}" for k, v in fields.items())
        if record.exc_info:
            text += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        return text


def _plain(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return json.dumps(s) if (" " in s or not s) else s


def log_fields(**fields: Any) -> dict[str, Any]:
    """``log.info("worker started", extra=log_fields(worker_id=w))``."""
    return {"fields": {k: v for k, v in fields.items() if v is not None}}


def stderr_is_journal(env: Mapping[str, str], stream: IO[str] | None = None) -> bool:
    """True when stderr is connected to journald: ``$JOURNAL_STREAM`` names its device:inode."""
    value = env.get("JOURNAL_STREAM", "")
    if ":" not in value:
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
        dev, ino = (int(x) for x in value.split(":", 1))
    except (OSError, ValueError, AttributeError):
        return False
    return st.st_dev == dev and st.st_ino == ino


def setup_logging(*, level: str = "info", log_file: Path | None = None, config: LogConfig | None = None,
                  env: Mapping[str, str] | None = None, stream: IO[str] | None = None) -> logging.Handler:
    """Route this process's ``logging`` (root logger) to one handler; returns it.

    With ``log_file``: JSON lines to that file, rotated at ``config.max_bytes`` keeping
    ``config.backups`` files. Without: stderr, journald-style when it is the journal."""
    cfg = config or LogConfig()
    env = os.environ if env is None else env
    handler: logging.Handler
    refused: OSError | None = None
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = SafeRotatingFileHandler(log_file, maxBytes=cfg.max_bytes, backupCount=cfg.backups,
                                              encoding="utf-8")
            handler.setFormatter(JsonFormatter())
        except safeio.RefusedLogError as exc:  # a link or FIFO planted at the name: log to stderr instead
            refused, log_file = exc, None
    if log_file is None:
        out = stream or sys.stderr
        handler = logging.StreamHandler(out)
        handler.setFormatter(JournalFormatter() if stderr_is_journal(env, out) else JsonFormatter())
    root = logging.getLogger()
    while _OURS:  # a second set-up replaces ours; handlers others added (pytest's) stay
        old = _OURS.pop()
        root.removeHandler(old)
        old.close()
    _OURS.append(handler)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for name in CHATTY_LIBRARIES:  # httpx logs every request at INFO: health checks would flood the log
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    if refused is not None:
        logging.getLogger(__name__).warning("log file refused, logging to stderr: %s", refused)
    return handler


class SafeRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """``RotatingFileHandler`` whose file is opened through ``safeio.open_append``: a symlink or
    FIFO at the name (at start or at a rollover) raises ``RefusedLogError``, never redirects."""

    def _open(self) -> io.TextIOWrapper:
        fd = safeio.open_append(self.baseFilename)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def add_log_level_arg(parser: Any) -> None:
    """``--log-level`` for supervise, worker and up (default: galaxy.toml's [log] level, else info)."""
    parser.add_argument("--log-level", choices=LEVELS, default=None,
                        help="debug | info | warning | error (default: [log] level in galaxy.toml, else info)")


LOG_FILE_ENV, LOG_LEVEL_ENV = "GALAXY_LOG_FILE", "GALAXY_LOG_LEVEL"


def worker_log_env(log_file: Path, config: LogConfig) -> dict[str, str]:
    """What the supervisor puts in a worker's environment: its own log file and level
    (``galaxy worker`` reads them as the defaults of --log-file / --log-level; other
    programs ignore them)."""
    return {LOG_FILE_ENV: str(log_file), LOG_LEVEL_ENV: config.level,
            "GALAXY_LOG_MAX_MB": f"{config.max_mb:g}", "GALAXY_LOG_BACKUPS": str(config.backups)}


def rotate_if_over(path: Path, max_bytes: int, backups: int) -> bool:
    """Rotate a file only its one opener writes, right before it opens it (a worker's ``.out``)."""
    try:
        st = path.lstat()  # a link planted at the name is not ours to rotate or truncate
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size < max_bytes:
        return False
    try:
        _shift(path, backups)
    except OSError:
        return False
    return True


def _shift(path: Path, backups: int) -> None:
    """``path`` -> ``path.1`` -> ... -> ``path.<backups>`` (the oldest drops off); 0 backups: truncate."""
    if backups <= 0:  # through a descriptor that cannot be a link's target or a FIFO
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)
        return
    for i in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
    os.replace(path, path.with_name(f"{path.name}.1"))


class EventsRotator:
    """Rotates ``logs/events.jsonl`` by size: ``events.jsonl`` -> ``.1`` -> ``.2`` ... (rename only).

    Only the supervisor runs one. Writers keep an O_APPEND descriptor and reopen by name
    when the inode changes (engine.events, within a second), so a line written just after the
    rename lands whole in ``.1``; readers follow the name and finish the old file first
    (engine.supervisor.model_demand)."""

    def __init__(self, path: Path, max_bytes: int, backups: int, check_every_s: float = 10.0) -> None:
        self.path, self.max_bytes, self.backups, self.check_every_s = Path(path), max_bytes, backups, check_every_s
        self._next = float("-inf")
        self.rotations = 0

    def tick(self, now: float) -> bool:
        """Rotate when due and over size; True when it did."""
        if now < self._next:
            return False
        self._next = now + self.check_every_s
        try:
            st = self.path.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_size < self.max_bytes:
                return False
            self.rotate()
        except OSError:
            return False
        return True

    def rotate(self) -> None:
        _shift(self.path, self.backups)  # 0 backups: truncated in place (readers see it shrink)
        self.rotations += 1


def rotated_rest(path: Path, inode: int | None, offset: int, limit: int = 1 << 20) -> bytes:
    """What a reader following ``path`` had not read yet when it was rotated: the whole lines of
    ``path.1`` from ``offset`` when ``path.1`` is the file the reader was in (same inode); else b"".
    Readers call it on seeing a new inode, before starting the new file at 0 (model demand,
    metrics feed), so a rotation loses no line."""
    if inode is None:
        return b""
    try:  # never a FIFO or a link planted at path.1 (safeio.open_regular)
        fd = safeio.open_regular(path.with_name(f"{path.name}.1"), 1 << 62)
    except (OSError, safeio.UnsafeFileError):
        return b""
    try:
        if os.fstat(fd).st_ino != inode:
            return b""
        data = os.pread(fd, limit, offset)
    except OSError:
        return b""
    finally:
        os.close(fd)
    return data[: data.rfind(b"\n") + 1]
