"""Text from a task (its output) made safe to show on a terminal.

Kept apart from ``engine.task_report`` so the dashboard's Tasks table can use it without
importing the queue.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Task output as plain text for a terminal: colour and cursor escapes dropped, a carriage
    return read as a new line, other control characters shown as U+FFFD. Why: a task's output
    is data; printed raw, ``ls --color`` or a progress bar would redraw the operator's screen."""
    text = _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("\ufffd", text)


def one_line(text: str | None) -> str:
    """A multi-line error as one line (its lines joined by " | ") of plain text: a field row never
    breaks, and escapes from a command's stderr never reach the operator's terminal."""
    return " | ".join(line.strip() for line in terminal_safe(text or "").splitlines() if line.strip())
