"""The CLI's id gate: every id from the command line is checked (engine.ids) before any
command file is written or any path is built, and a bad one is named on stderr."""

from __future__ import annotations

import sys

from engine.ids import IdKind, InvalidId, check_id

BAD_ID_EXIT = 2


def bad_id(kind: IdKind, value: object) -> bool:
    """True (after printing why) when ``value`` is not a valid ``kind`` id."""
    try:
        check_id(kind, value)
    except InvalidId as exc:
        print(f"galaxy: {exc}", file=sys.stderr)
        return True
    return False
