"""The help screen: every key, what it sends, and what the colours mean."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# galaxy dashboard keys

| key | does | sends |
|---|---|---|
| up/down, tab | select a GPU card / task / escalation; tab moves between panels | - |
| p | pause or resume the selected worker | `pause` / `resume` |
| x | drain the selected worker (finish its task, take no more) | `drain` |
| s | start a stopped/fatal worker; restart a live one (asks, says what happens to its task) | `resume` / `restart` |
| u | force-unload the selected worker's model (says exactly what happens; no model: sends nothing) | `unload` |
| c | cancel the selected task, or the selected GPU's task (asks; Cancel is focused) | `cancel` |
| r | retry the selected failed task | `retry` |
| R | retry all failed tasks (asks, with the count) | `retry_all_failed` |
| e | review the oldest pending escalation, from anywhere | - |
| E | all escalations: pending and decided tabs | - |
| a / d | approve / deny the highlighted escalation when its panel has focus, else open its review (deny asks for a reason) | `approve` / `deny` |
| enter | detail of the selected task, GPU task or escalation | - |
| / | filter Tasks by name, class, state, worker or model (words; empty: all) | - |
| o / O, click a header | Tasks: sort by the next column / reverse | - |
| [ / ] | Tasks: previous / next page of queued tasks | - |
| Home / End, PgUp / PgDn | first / last row, a page up / down (the view stays put as rows arrive) | - |
| l | events full-screen (`f` there or on the Events panel: show/hide claims and starts) | - |
| g | cluster (Redis store): show one rig's GPU cards, the next rig, then every rig again | - |
| t | next theme (remembered in ~/.config/galaxy/dashboard.toml) | - |
| ctrl+p | command palette (all of the above by name) | - |
| ? | this help | - |
| q | quit the dashboard: **the rig keeps running** | - |

On the review screen: `a` approve, `o` approve over today's budget (asks), `d` deny with a
reason, `n` next pending, `esc` back. The payload is the whole request body as it would be
sent; `▌` marks untrusted data. Everything a task, event or payload says is shown as text.

Temperatures read without colour too: `78C warm`, `85C HOT`, `HOLD` (thermal hold).
VRAM bars: `█` galaxy's models, `▒` other processes, `·` free.
`STALE since HH:MM:SS`: no fresh snapshot for 3 s or the supervisor's pid is gone;
the screen picks up again by itself when the supervisor is back. While stale, keys that send
ask "No supervisor is running; send anyway?" (Cancel focused).
On a shared (Redis) store the GPU panel shows every rig, each under a header (`rig lab · live`,
`rig mac · STALE 1m05s`); a worker's keys go to its own rig's supervisor, queue keys and
decisions to any live one.
`READ-ONLY`: started with `--read-only`; keys only say what they would send.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
