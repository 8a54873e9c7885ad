"""Ids that become file names: one check per kind, run before any path is built.

Every id an operator, a dashboard, a command file or a plan hands the engine ends up in a
path (``failed/<task_id>.json``, ``state/escalations/<id>.json``, ``<worker>.control.json``).
An id that is not a plain file name (``../x``, ``/etc/passwd``, ``a/b``, a NUL byte, a
trailing newline) could read, write, rename or delete outside the rig's root, so it is
refused here, with a message that says which rule it broke. The rules are ASCII only:
letters, digits, ``_``, ``-``, ``.``; first character a letter or digit; no ``..``.
``+`` separates the fields of queue file names, so it never occurs in an id.
"""

from __future__ import annotations

import re
from enum import StrEnum


class IdKind(StrEnum):
    TASK = "task"
    WORKER = "worker"
    ESCALATION = "escalation"


MAX_CHARS: dict[IdKind, int] = {IdKind.TASK: 128, IdKind.WORKER: 64, IdKind.ESCALATION: 64}
_BODY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class InvalidId(ValueError):
    """An id refused before it reached the filesystem. ``kind`` and ``value`` say which."""

    def __init__(self, kind: IdKind, value: object, why: str) -> None:
        self.kind = kind
        self.value = value
        self.why = why
        super().__init__(f"{kind.value} id {show_id(value)} is not valid: {why}")


def show_id(value: object) -> str:
    """The id as it may safely be printed: quoted, control characters escaped, cut at 80."""
    text = repr(value) if isinstance(value, str) else f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "...'"


def id_problem(kind: IdKind, value: object) -> str | None:
    """Why ``value`` is not a valid ``kind`` id, or None when it is. Pure."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value:
        return "it is empty"
    limit = MAX_CHARS[kind]
    if len(value) > limit:
        return f"it is {len(value)} characters long (at most {limit})"
    if "/" in value or "\\" in value:
        return "it contains a path separator"
    if ".." in value:
        return "it contains '..'"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "it contains a control character"
    if not value.isascii():
        return "it contains a non-ASCII character"
    if "+" in value:
        return "it contains '+' (the queue's name separator)"
    if value[0] in ".-_":
        return f"it starts with {value[0]!r} (must start with a letter or digit)"
    if not _BODY.fullmatch(value):
        bad = sorted({c for c in value if not (c.isalnum() or c in "_.-")})
        return f"it contains {' '.join(repr(c) for c in bad)} (only letters, digits, '_', '-', '.')"
    return None


def is_valid_id(kind: IdKind, value: object) -> bool:
    return id_problem(kind, value) is None


def check_id(kind: IdKind, value: object) -> str:
    """``value`` itself when it is a valid ``kind`` id; raises InvalidId otherwise."""
    why = id_problem(kind, value)
    if why is not None:
        raise InvalidId(kind, value, why)
    assert isinstance(value, str)
    return value


def check_escalation_id(value: object) -> str:
    return check_id(IdKind.ESCALATION, value)


COMMAND_TARGET_KIND: dict[str, IdKind] = {
    "pause": IdKind.WORKER, "resume": IdKind.WORKER, "drain": IdKind.WORKER, "restart": IdKind.WORKER,
    "unload": IdKind.WORKER, "start": IdKind.WORKER,
    "retry": IdKind.TASK, "cancel": IdKind.TASK,
    "approve": IdKind.ESCALATION, "deny": IdKind.ESCALATION,
}
"""Which id a command's target is (by kind value). Node names (breakers) are looked up in a
table, never joined into a path, so they are not listed."""


def command_target_problem(kind: str, target: object) -> str | None:
    """The refusal for a command whose target is not a valid id of its kind, or None."""
    id_kind = COMMAND_TARGET_KIND.get(kind)
    if id_kind is None or target is None:
        return None
    why = id_problem(id_kind, target)
    return None if why is None else str(InvalidId(id_kind, target, why))


def check_command_target(kind: str, target: object) -> None:
    """Raise InvalidId when a command's target is not a valid id of its kind (the sinks
    call it, so a bad id never reaches the command channel)."""
    id_kind = COMMAND_TARGET_KIND.get(kind)
    if id_kind is not None and target is not None:
        check_id(id_kind, target)
