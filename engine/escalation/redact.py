"""Redact secrets before text is logged for training or leaves the rig.

Handles secrets that span lines: PEM private-key blocks, a value on the line after its
label ("password:\\n  hunter2"), a bearer token wrapped onto the next line, and a key
split by a line continuation or string concatenation.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
# Rejoin tokens split across lines: "sk-abc\\\n def", '"sk-abc" +\n "def"', "sk-abc\n  def" inside quotes.
_CONTINUATION = re.compile(r"""(?:\\\r?\n\s*|["']\s*\+?\s*\r?\n\s*\+?\s*["'])""")
_TOKEN_PATTERNS = [
    re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{8,}"),  # Anthropic
    re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{16,}"),  # OpenAI-style
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),  # Google API key
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),  # JWT
]
# Labels count inside environment-style names too (DB_PASSWORD, AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN):
# "_" is a word character, so \b would not see a label there.
_LABEL_START = r"(?<![A-Za-z0-9])"
_BEARER = re.compile(r"(?i)" + _LABEL_START + r"(bearer|token)(\s*[:=]?\s*)(\r?\n\s*)?([A-Za-z0-9_\-\.=+/]{12,})")
_LABELLED = re.compile(
    r"(?im)" + _LABEL_START + r"((?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|"
    r"client[_-]?secret|private[_-]?key|x-api-key|authorization)(?:[_\-][A-Za-z0-9]+)*)"
    r"(\"?'?\s*[:=]\s*)(\r?\n[ \t]*)?(\"[^\"\n]*\"|'[^'\n]*'|(?:(?:basic|bearer|token|digest)[ \t]+)?[^\s,;]+)")
_URL_CREDS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")


def _join_continuations(text: str) -> str:
    return _CONTINUATION.sub("", text)


def redact(text: str) -> str:
    """Return ``text`` with secrets and email addresses replaced by [REDACTED]."""
    if not text:
        return text
    out = _PEM.sub(REDACTED, text)
    # Look for split tokens in a joined copy; where one is found, redact in the joined text.
    joined = _join_continuations(out)
    if joined != out and any(set(p.findall(joined)) != set(p.findall(out)) for p in _TOKEN_PATTERNS):
        out = joined
    for pattern in _TOKEN_PATTERNS:
        out = pattern.sub(REDACTED, out)
    out = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{REDACTED}"
                      if m.group(4) != REDACTED else m.group(0), out)
    out = _LABELLED.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{REDACTED}", out)
    out = _URL_CREDS.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", out)
    out = _EMAIL.sub(REDACTED, out)
    return out


def contains_secret(text: str) -> bool:
    return redact(text) != text
