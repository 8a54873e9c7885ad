"""Turn a plan's Markdown into sections of ``key: value`` fields and code blocks.

Deliberately a small line scanner, not a Markdown library: the plan format uses only
headings, one-line bullets and fenced code blocks, and every piece must keep its line
number so errors can point at it. Prose (paragraphs, quotes, deeper headings, bullets
that are not ``key: value``) is ignored, so a plan can explain itself on GitHub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.plans.errors import ErrorCollector

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_FIELD = re.compile(r"^ {0,3}[-*+][ \t]+([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(?!//)[ \t]*(.*?)[ \t]*$")
_SUB_ITEM = re.compile(r"^(?: {2,}|\t)[ \t]*[-*+][ \t]+(.*?)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$")


@dataclass
class Field:
    key: str  # normalised: lower case, '-' and ' ' become '_'
    raw_key: str
    value: str
    line: int
    items: list[tuple[str, int]] | None = None  # nested bullets under an empty value


@dataclass
class CodeBlock:
    info: str  # the fence's language tag ("sh", "prompt", ...), lower case, may be ""
    text: str
    line: int  # the opening fence's line


@dataclass
class Section:
    name: str
    line: int
    fields: list[Field] = field(default_factory=list)
    blocks: list[CodeBlock] = field(default_factory=list)


@dataclass
class PlanDocument:
    title: str | None = None
    defaults: list[Field] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


def normalise_key(raw: str) -> str:
    return re.sub(r"[\s-]+", "_", raw.strip().lower())


def _strip_code_span(value: str) -> str:
    """`echo hi` reads well on GitHub; the value is what is inside the backticks."""
    m = re.fullmatch(r"(`+)(.*?)\1", value)
    return m.group(2).strip() if m and m.group(2).strip() else value


def scan(text: str, errors: ErrorCollector) -> PlanDocument:
    doc = PlanDocument()
    section: Section | None = None
    last_field: Field | None = None  # the field nested bullets would belong to
    fence: tuple[str, int, str, int, list[str]] | None = None  # char, len, info, line, body
    in_comment = False

    for lineno, line in enumerate(text.splitlines(), start=1):
        if fence is not None:
            char, length, info, start, body = fence
            stripped = line.strip()
            if stripped and set(stripped) == {char} and len(stripped) >= length and len(line) - len(line.lstrip()) <= 3:
                if section is not None:
                    section.blocks.append(CodeBlock(info, "\n".join(body), start))
                fence = None
            else:
                body.append(line)
            continue
        if in_comment:
            if "-->" in line:
                in_comment = False
            continue
        if line.lstrip().startswith("<!--"):
            in_comment = "-->" not in line
            continue

        m = _FENCE.match(line)
        if m:
            fence = (m.group(1)[0], len(m.group(1)), m.group(2).lower(), lineno, [])
            last_field = None
            continue

        m = _HEADING.match(line)
        if m:
            level, title = len(m.group(1)), (m.group(2) or "").rstrip("#").strip()
            last_field = None
            if level == 1:
                if doc.title is None and section is None:
                    doc.title = title
                else:
                    errors.add(lineno, "only one '# title' is allowed, before the first task; "
                                       "use '## name' for a task")
            elif level == 2:
                section = Section(name=title, line=lineno)
                doc.sections.append(section)
            continue  # level 3+ headings are prose inside a task

        if last_field is not None and not last_field.value:
            m = _SUB_ITEM.match(line)
            if m:
                if last_field.items is None:
                    last_field.items = []
                last_field.items.append((_strip_code_span(m.group(1)), lineno))
                continue

        m = _FIELD.match(line)
        if m:
            raw_key = m.group(1)
            f = Field(normalise_key(raw_key), raw_key.strip(), _strip_code_span(m.group(2) or ""), lineno)
            (section.fields if section is not None else doc.defaults).append(f)
            last_field = f
            continue
        if line.strip():
            last_field = None  # prose ends a field's nested list

    if fence is not None:
        errors.add(fence[3], "code block is never closed (add a line with "
                             f"{fence[0] * fence[1]})")
    if in_comment:
        errors.add(len(text.splitlines()), "an HTML comment '<!--' is never closed")
    return doc
