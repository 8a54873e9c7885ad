"""Redact secrets before text is logged for training or leaves the rig.

The rules (``secret_rules.py``): every private key block, the vendor key formats of the
well-known secret scanners, labelled values (``password=``, ``AccountKey=``), bearer and
basic credentials, URL user-info, natural-language phrases ("the root password is
hunter2") and email addresses. Secrets that span lines are handled too: a value on the
line after its label ("password:\\n  hunter2"), a bearer token wrapped onto the next line,
and a key split by a line continuation or string concatenation.

``redact`` is idempotent (redacting its own output changes nothing): it runs the rules to
a fixpoint, so a rule that uncovers another match in its output cannot leave one behind.
"""

from __future__ import annotations

import re

from engine.escalation.secret_rules import (
    BEARER,
    EMAIL,
    LABELLED,
    PHRASE,
    PHRASE_STOPWORDS,
    PRIVATE_KEY_BLOCKS,
    REFERENCE_VALUE,
    URL_CREDS,
    VENDOR_TOKENS,
)

REDACTED = "[REDACTED]"
MAX_PASSES = 4  # one pass is almost always a fixpoint; a few more cover rule interplay

# Rejoin tokens split across lines: "sk-abc\\\n def", '"sk-abc" +\n "def"', "sk-abc\n  def" inside quotes.
_CONTINUATION = re.compile(r"""(?:\\\r?\n\s*|["']\s*\+?\s*\r?\n\s*\+?\s*["'])""")
_TOKEN_PATTERNS = [p for _, p in VENDOR_TOKENS]
_ANY_TOKEN = re.compile("|".join(f"(?:{p.pattern})" for p in _TOKEN_PATTERNS))  # one scan, not one per vendor


def _join_continuations(text: str) -> str:
    return _CONTINUATION.sub("", text)


def _labelled(m: re.Match[str]) -> str:
    value = m.group(4)
    if REFERENCE_VALUE.match(value):  # password = os.environ["DB_PASSWORD"], ${TOKEN}, <your key>
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{REDACTED}"


def _phrase(m: re.Match[str]) -> str:
    value = m.group(2)
    if value.lower() in PHRASE_STOPWORDS or value == REDACTED:  # "the password is required"
        return m.group(0)
    return f"{m.group(1)}{REDACTED}"


def _once(text: str) -> str:
    out = text
    for block in PRIVATE_KEY_BLOCKS:
        out = block.sub(REDACTED, out)
    # Look for split tokens in a joined copy; where one is found, redact in the joined text.
    joined = _join_continuations(out)
    if joined != out and any(set(p.findall(joined)) != set(p.findall(out)) for p in _TOKEN_PATTERNS):
        out = joined
    out = _ANY_TOKEN.sub(REDACTED, out)
    out = BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{REDACTED}"
                     if m.group(4) != REDACTED else m.group(0), out)
    out = LABELLED.sub(_labelled, out)
    out = PHRASE.sub(_phrase, out)
    out = URL_CREDS.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", out)
    return EMAIL.sub(REDACTED, out)


def redact(text: str) -> str:
    """Return ``text`` with secrets and email addresses replaced by [REDACTED]."""
    if not text:
        return text
    out = _once(text)
    for _ in range(MAX_PASSES):
        again = _once(out)
        if again == out:
            break
        out = again
    return out


def contains_secret(text: str) -> bool:
    return redact(text) != text
