"""Cost estimate before approval and the ledger of what was really spent, per day."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine import safeio
from engine.routing.complexity import estimate_tokens


@dataclass(frozen=True)
class Price:
    in_per_mtok: float
    out_per_mtok: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return tokens_in * self.in_per_mtok / 1e6 + tokens_out * self.out_per_mtok / 1e6


def estimate_cost(price: Price, system: str, user: str, max_output_tokens: int) -> tuple[int, float]:
    """Input tokens from the text; output priced at the cap (the worst case the operator approves)."""
    tokens_in = estimate_tokens(system) + estimate_tokens(user)
    return tokens_in, price.cost(tokens_in, max_output_tokens)


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


MAX_COST_LEDGER_BYTES = 64 * 1024 * 1024
"""The cost ledger is read whole for each budget check: about 250,000 answered escalations."""


class CostLedger:
    """Append-only JSON lines: one entry per answered escalation.

    It lives in the shared root: appended through ``safeio.append_bytes`` and read through the
    bounded reader, so a link, FIFO or device planted at its name is never followed, waited on
    or read without end. An unreadable ledger reads as no entries with ``last_error`` set, and
    the escalation manager then counts no budget left (fail closed: nothing is paid blind)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.last_error = ""  # why the last read failed (names the file); "" after a good read

    def record(self, *, at: float, escalation_id: str, task_id: str, provider: str, model: str,
               tokens_in: int, tokens_out: int, cost_usd: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": at, "day": day_of(at), "escalation_id": escalation_id, "task_id": task_id,
                           "provider": provider, "model": model, "tokens_in": tokens_in,
                           "tokens_out": tokens_out, "cost_usd": round(cost_usd, 6)}) + "\n"
        safeio.append_bytes(self.path, line.encode())  # one write; never through a planted link or FIFO

    def entries(self) -> list[dict[str, object]]:
        try:
            raw = safeio.read_bytes(self.path, MAX_COST_LEDGER_BYTES)
        except FileNotFoundError:
            self.last_error = ""
            return []
        except (safeio.UnsafeFileError, OSError) as exc:
            self.last_error = str(exc)
            return []
        self.last_error = ""
        lines = raw.decode("utf-8", errors="replace").splitlines()
        out: list[dict[str, object]] = []
        for line in lines:
            try:
                entry = safeio.parse_json(self.path, line)  # torn, foreign or 100k-deep: skipped
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def spent_on(self, day: str) -> float:
        return sum(_num(e.get("cost_usd")) for e in self.entries() if e.get("day") == day)

    def totals_by_day(self) -> dict[str, dict[str, float]]:
        days: dict[str, dict[str, float]] = {}
        for e in self.entries():
            d = days.setdefault(str(e.get("day")), {"tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0, "count": 0})
            d["tokens_in"] += int(_num(e.get("tokens_in")))
            d["tokens_out"] += int(_num(e.get("tokens_out")))
            d["cost_usd"] += _num(e.get("cost_usd"))
            d["count"] += 1
        return days


def _num(value: object) -> float:
    """A number field of a ledger line; missing or not a number counts as 0 (lines are read, not trusted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return 0.0
    try:
        return float(value)
    except ValueError:
        return 0.0
