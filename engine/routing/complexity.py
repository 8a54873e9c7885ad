"""Task complexity from cheap signals, so routing costs microseconds, not a model call.

Pluggable: anything with ``classify(request) -> Assessment`` can replace it (for
instance a small local model once the training-samples log has enough history).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

SIMPLE, MEDIUM, COMPLEX = 0, 1, 2
NAMES = {SIMPLE: "simple", MEDIUM: "medium", COMPLEX: "complex"}

_COMPLEX_WORDS = re.compile(
    r"\b(analy[sz]e|compare|prove|architect|design|refactor|multi-step|step by step|plan|reason|"
    r"meta-analysis|trade-?offs?|debug)\b", re.I)
_SIMPLE_WORDS = re.compile(r"\b(extract|format|classify|translate|list|summari[sz]e this sentence|yes or no)\b", re.I)


def estimate_tokens(text: str) -> int:
    """About 4 characters per token for English; good enough to compare with context windows."""
    return max(1, (len(text) + 3) // 4)


@dataclass(frozen=True)
class LlmRequest:
    prompt: str
    system: str | None = None
    context: str = ""  # untrusted data that goes with the prompt
    tier: int | None = None  # explicit tier asked by the task
    requires_external: bool = False
    max_output_tokens: int = 512
    task_id: str | None = None

    @property
    def input_tokens(self) -> int:
        return estimate_tokens((self.system or "") + self.prompt + self.context)


@dataclass(frozen=True)
class Assessment:
    complexity: int
    reasons: tuple[str, ...]


class ComplexityClassifier(Protocol):
    def classify(self, request: LlmRequest) -> Assessment: ...


@dataclass(frozen=True)
class HeuristicClassifier:
    long_prompt_tokens: int = 2000
    very_long_prompt_tokens: int = 6000

    def classify(self, request: LlmRequest) -> Assessment:
        if request.tier is not None:
            return Assessment(min(request.tier, COMPLEX), (f"task asks for tier {request.tier}",))
        if request.requires_external:
            return Assessment(COMPLEX, ("task requires an external model",))
        tokens = request.input_tokens
        reasons: list[str] = []
        level = SIMPLE
        if tokens >= self.very_long_prompt_tokens:
            level = COMPLEX
            reasons.append(f"very long input ({tokens} tokens)")
        elif tokens >= self.long_prompt_tokens:
            level = MEDIUM
            reasons.append(f"long input ({tokens} tokens)")
        # Instructions sit at the ends of a prompt; scanning a 100 KB pasted document in the
        # middle would cost more than the routing decision itself.
        text = request.prompt if len(request.prompt) <= 6000 else request.prompt[:4000] + request.prompt[-2000:]
        hits = {m.group(0).lower() for m in _COMPLEX_WORDS.finditer(text)}
        if hits:
            level = min(COMPLEX, level + (2 if len(hits) >= 3 else 1))
            reasons.append("keywords: " + ", ".join(sorted(hits)))
        elif level == SIMPLE and _SIMPLE_WORDS.search(text):
            reasons.append("simple keywords")
        if not reasons:
            reasons.append(f"short input ({tokens} tokens)")
        return Assessment(level, tuple(reasons))


FALLBACK_ORDER = {
    SIMPLE: (0, 1, 2),
    MEDIUM: (1, 2, 0),
    COMPLEX: (2, 1, 0),
}
"""The design notes' fallback order per complexity (tiers, best first)."""
