"""What an escalation would send, as Content for the review screen (pure; no widgets, no clock).

Everything here is data from a task or a provider payload: it is built with ``Content``
(never markup), so ``[bold]`` in a prompt shows as ``[bold]``. Untrusted parts (between
``<untrusted_data>`` tags, see engine/escalation/prompt.py) carry a gutter mark, so they
read as untrusted without colour too. Secrets are redacted for display; if the stored
payload still holds one, the screen says it WOULD be sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.content import Content

from engine.escalation.redact import contains_secret, redact
from engine.snapshot import EscalationView
from galaxy_tui.render import fmt_clock, fmt_duration

OPEN_TAG = "<untrusted_data>"
CLOSE_TAG = "</untrusted_data>"
UNTRUSTED_STYLE = "$warning italic"
UNTRUSTED_GUTTER = "▌ "
TRUSTED_GUTTER = "│ "


@dataclass(frozen=True)
class Payload:
    """The request body of one escalation: the whole of it (from the store) or the snapshot's preview."""

    body: dict[str, Any] | None  # None: only the preview text was readable
    text: str  # the body as JSON text, or the preview
    complete: bool  # False: the snapshot's preview, possibly cut at its limit
    sensitive: bool = False
    note: str | None = None  # why the whole body could not be read


def load_payload(root: Path | None, view: EscalationView) -> Payload:
    """The stored request body (``state/escalations/ID.json``), else the snapshot's preview.

    Read with a bounded size; runs in a worker thread of the screen."""
    from engine.paths import RigPaths

    fallback_note = "no shared root: showing the snapshot's preview"
    if root is not None:
        path = RigPaths(root).escalations / f"{view.escalation_id}.json"
        try:
            with open(path, "rb") as fh:
                raw = fh.read(8_000_001)
            if len(raw) > 8_000_000:
                raise ValueError("larger than 8 MB")
            data = json.loads(raw)
            body = data["payload"]
            if not isinstance(body, dict):
                raise TypeError("field 'payload' is not an object")
            return Payload(body, json.dumps(body, indent=1, ensure_ascii=False), True,
                           sensitive=bool(data.get("sensitive")))
        except FileNotFoundError:
            fallback_note = f"{path}: not found (decided and pruned?): showing the snapshot's preview"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fallback_note = f"{path}: {exc}: showing the snapshot's preview"
    text = view.preview
    complete = "chars in all)" not in text[-40:]
    sensitive = text.startswith("SENSITIVE TASK")
    body = None
    if complete:  # a whole preview is the body as JSON (engine.escalation.service.preview_of)
        try:
            parsed = json.loads(text.split("\n", 1)[1] if sensitive else text)
            body = parsed if isinstance(parsed, dict) else None
        except (ValueError, IndexError):
            body = None
    return Payload(body, text, complete, sensitive=sensitive, note=fallback_note)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value


def secret_count(payload: Payload) -> int:
    """Strings in the stored body that still look like secrets (0 when the engine redacted them)."""
    found = 0

    def walk(v: Any) -> None:
        nonlocal found
        if isinstance(v, str):
            found += contains_secret(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(payload.body if payload.body is not None else payload.text)
    return found


def messages_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of every message, system first (Anthropic's top-level ``system`` included)."""
    out: list[tuple[str, str]] = []
    if isinstance(body.get("system"), str):
        out.append(("system", body["system"]))
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            content = m.get("content")
            if isinstance(content, list):  # content blocks
                content = "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
            out.append((str(m.get("role", "?")), str(content or "")))
    return out


def marked_lines(text: str) -> list[Content]:
    """One Content per line; lines of an ``<untrusted_data>`` section get the untrusted gutter.

    The prompt builder puts each tag on a line of its own and neutralises tags inside the data,
    so only a whole-line tag opens or closes a section (the system note that names the tag does not)."""
    lines: list[Content] = []
    inside = False
    for line in redact(text).split("\n"):
        if line.strip() == OPEN_TAG:
            inside = True
        gutter = (UNTRUSTED_GUTTER, "$warning bold") if inside else (TRUSTED_GUTTER, "$text-muted")
        lines.append(Content.assemble(gutter, (line, UNTRUSTED_STYLE if inside else "")))
        if line.strip() == CLOSE_TAG:
            inside = False
    return lines


_JSON_SPAN = re.compile(r'(?:(?<=\\n)|(?<="))' + re.escape(OPEN_TAG) + r"\\n.*?(?:\\n" + re.escape(CLOSE_TAG)
                        + r"|(?=\"))")


def json_content(text: str) -> Content:
    """The JSON body with each untrusted section inside its strings (a whole-line tag, escaped
    as ``\\n<untrusted_data>\\n``) styled; the text itself is unchanged."""
    parts: list[tuple[str, str] | str] = []
    at = 0
    for m in _JSON_SPAN.finditer(text):
        parts += [text[at:m.start()], (m.group(0), "$warning reverse")]
        at = m.end()
    parts.append(text[at:])
    return Content.assemble(*parts)


def payload_content(payload: Payload) -> Content:
    """Decoded messages (readable, untrusted marked), then the request body exactly as JSON."""
    lines: list[Content] = []
    count = secret_count(payload)
    if count:
        lines.append(Content.styled(f"!! {count} field(s) of the stored body look like secrets: shown redacted "
                                    "here, but they WOULD BE SENT as stored. Deny it.", "$error bold reverse"))
    if payload.sensitive:
        lines.append(Content.styled("SENSITIVE TASK: its content would leave the rig.", "$error bold"))
    if payload.note:
        lines.append(Content.styled(payload.note, "$text-muted"))
    if not payload.complete:
        lines.append(Content.styled("the preview is cut: the whole body is in state/escalations/", "$warning"))
    legend = Content.assemble(("legend: ", "$text-muted"), (UNTRUSTED_GUTTER, "$warning bold"),
                              ("untrusted data (the model is told never to obey it)", UNTRUSTED_STYLE))
    lines.append(legend)
    if payload.body is not None:
        for role, text in messages_of(payload.body):
            lines.append(Content.styled(f"── {role} message ──", "bold"))
            lines += marked_lines(text)
        lines.append(Content.styled("── request body, exactly as sent (JSON) ──", "bold"))
        lines.append(json_content(json.dumps(_redacted(payload.body), indent=1, ensure_ascii=False)))
    else:
        lines.append(Content.styled("── request body (snapshot preview) ──", "bold"))
        lines.append(json_content(redact(payload.text)))
    return Content("\n").join(lines)


def max_output_tokens(payload: Payload) -> int | None:
    body = payload.body or {}
    value = body.get("max_tokens", body.get("max_completion_tokens"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def over_budget(view: EscalationView) -> bool:
    return view.budget_left_usd is not None and view.est_cost_usd > view.budget_left_usd


def facts_content(view: EscalationView, payload: Payload | None, *, task_name: str | None, now: float,
                  position: str) -> Content:
    """The head of the review screen: task, model, provider, tokens, cost against the budget, expiry."""
    state_style = "$warning bold reverse" if view.state == "pending" else "$text-muted bold"
    cap = max_output_tokens(payload) if payload is not None else None
    left = view.budget_left_usd
    if left is None:
        budget: list[tuple[str, str] | str] = [("no daily budget known", "$text-muted")]
    elif over_budget(view):
        budget = [(f"OVER today's budget: ${left:.4f} left", "$error bold")]
    else:
        budget = [(f"${left:.2f} left today", "$success"), f" (${left - view.est_cost_usd:.2f} after)"]
    if view.expires_at is None:
        expiry = Content.styled("never", "$text-muted")
    elif now >= view.expires_at:
        expiry = Content.styled(f"{fmt_clock(view.expires_at)} (expired)", "$error bold")
    else:
        expiry = Content.assemble(fmt_clock(view.expires_at), (f" (in {fmt_duration(view.expires_at - now)})",
                                                               "$warning" if view.expires_at - now < 120 else ""))
    rows: list[tuple[str, Content]] = [
        ("task", Content.assemble((view.task_id, "bold"), (f"  {task_name}" if task_name else "", ""))),
        ("to", Content.assemble(view.provider, " / ", (view.model, "bold"))),
        ("why", Content(view.reason)),
        ("tokens", Content(f"~{view.est_input_tokens:,} in + up to {cap:,} out (the cap)" if cap is not None
                           else f"~{view.est_input_tokens:,} in + the output cap")),
        ("cost", Content.assemble((f"≤ ${view.est_cost_usd:.4f}", "bold"), " at the cap · ", *budget)),
        ("expires", expiry),
    ]
    head = Content.assemble((f" {view.state.upper()} ", state_style), " ", (view.escalation_id, "bold"),
                            (f"  {position}" if position else "", "$text-muted"))
    body = [Content.assemble((f"{k:>8} ", "$text-muted"), v) for k, v in rows]
    return Content("\n").join([head, *body])
