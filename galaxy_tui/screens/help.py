"""The help screen: every key, what it sends, and what the colours mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# galaxy dashboard keys

| key | does | sends |
|---|---|---|
| up/down, tab | select a GPU card / task / escalation | - |
| p | pause or resume the selected worker | `pause` / `resume` |
| x | drain the selected worker (finish its task, take no more) | `drain` |
| u | force-unload the selected worker's model (asks if a task runs) | `unload` |
| r | retry the selected failed task | `retry` |
| R | retry all failed tasks (asks, with the count) | `retry_all_failed` |
| a | approve the selected escalation | `approve` |
| d | deny the selected escalation (asks for a reason) | `deny` |
| enter | task detail (fields, attempts, output tail) | - |
| t | next theme | - |
| ctrl+p | command palette (all of the above by name) | - |
| ? | this help | - |
| q | quit the dashboard: **the rig keeps running** | - |

Temperatures read without colour too: `78C warm`, `85C HOT`, `HOLD` (thermal hold).
VRAM bars: `█` galaxy's models, `▒` other processes, `·` free.
`STALE since HH:MM:SS`: no fresh snapshot for 3 s or the supervisor's pid is gone;
the screen picks up again by itself when the supervisor is back.
`READ-ONLY`: started with `--read-only`; keys only say what they would send.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
