"""Plan errors are collected, not raised one by one: a person fixing a plan by hand wants
every problem in one pass, each pointing at its line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PlanError(Exception):
    """A plan was rejected. ``errors`` holds every problem as ``"<file>:<line>: <message>"``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        head = f"plan rejected: {count} error{'s' if count != 1 else ''}"
        super().__init__(head + "".join(f"\n  {e}" for e in self.errors))


class ErrorCollector:
    """Gathers ``file:line: message`` strings for one plan file."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._found: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self._found.append((max(line, 1), message))

    @property
    def errors(self) -> list[str]:
        """In line order (stable), so the list reads top to bottom like the file."""
        return [f"{self.filename}:{line}: {msg}" for line, msg in sorted(self._found, key=lambda f: f[0])]

    def raise_if_any(self) -> None:
        if self._found:
            raise PlanError(self.errors)

    def __bool__(self) -> bool:
        return bool(self._found)


def suggest(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' hint for a misspelt key, value or name, or ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""
