"""One GPU in detail, like nvitop's: charts of the last minutes and who holds its VRAM.

Why a screen of its own: the GPU card has one line; an operator asking "why is GPU 2 hot"
or "who took 5 GB on GPU 0" needs the curve and the per-process list. The charts come
from the supervisor's history (``state/history.json``, 15 minutes, so a dashboard attached
a minute ago sees them too); without it (no shared root, or an older supervisor) they fall
back to the snapshot's last minute. The screen follows every new snapshot; the history is
re-read every ``HISTORY_RELOAD_S`` in a thread. Process and model names are shown as text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Sparkline, Static

from engine.history import RigHistory
from engine.snapshot import GpuView, Snapshot, TaskView, WorkerView

POLL_S = 0.5
HISTORY_RELOAD_S = 4.0
HistorySource = Callable[[], RigHistory | None]


@dataclass(frozen=True)
class Chart:
    key: str  # util | mem | temp | power
    label: str
    unit: str
    values: tuple[float | None, ...]
    now: float | None
    top: float | None  # the scale's top (100 %, VRAM total, power limit); None: the data's max


def charts_for(index: int, gpu: GpuView | None, history: RigHistory | None) -> tuple[list[Chart], float]:
    """The four charts of one GPU and the span they cover (seconds), history first, else the snapshot's."""
    series = history.gpu(index) if history is not None else None
    if series is not None and history is not None:
        span = (history.times[-1] - history.times[0]) if len(history.times) > 1 else 0.0
        util, mem, temp, power = series.util_pct, series.mem_used_mb, series.temp_c, series.power_w
        mem_top = series.mem_total_mb
        power_top = series.power_limit_w
    else:
        n = len(gpu.util_history) if gpu is not None else 0
        span = max(0.0, (n - 1) * 0.5)
        util = tuple(gpu.util_history) if gpu else ()
        mem = ()
        temp = tuple(gpu.temp_history) if gpu else ()
        power = tuple(gpu.power_history) if gpu else ()
        mem_top = gpu.mem_total_mb if gpu else None
        power_top = gpu.power_limit_w if gpu else None
    return [
        Chart("util", "util", "%", util, gpu.util_pct if gpu else None, 100.0),
        Chart("mem", "VRAM", " MB", mem, gpu.mem_used_mb if gpu else None, gpu.mem_total_mb if gpu and
              gpu.mem_total_mb else mem_top),
        Chart("temp", "temp", " C", temp, gpu.temp_c if gpu else None, None),
        Chart("power", "power", " W", power, gpu.power_w if gpu else None,
              gpu.power_limit_w if gpu and gpu.power_limit_w else power_top),
    ], span


def _fmt(v: float | None, unit: str) -> str:
    return "n/a" if v is None else f"{v:.0f}{unit}"


def chart_label(c: Chart, span_s: float) -> Content:
    """``util   97% of 100%  last 15 min: 0..100, mean 54``; n/a where the card does not say."""
    known = [v for v in c.values if v is not None]
    unit = c.unit.strip()
    stats = (f"{_span(span_s)}: {min(known):.0f}..{max(known):.0f} {unit}, mean {sum(known) / len(known):.0f}"
             if known else "no history yet")
    top = f" of {_fmt(c.top, c.unit)}" if c.top and c.key in ("mem", "power") else ""
    return Content.assemble((f"{c.label:<6}", "bold"), (f"{_fmt(c.now, c.unit):>8}", "$accent"), top, "  ",
                            (stats, "$text-muted"))


def _span(span_s: float) -> str:
    return f"last {span_s / 60:.0f} min" if span_s >= 90 else f"last {span_s:.0f} s"


def spark_data(values: Sequence[float | None]) -> list[float]:
    """Sparkline input (it scales from the data's min to its max): a gap carries the previous value."""
    out: list[float] = []
    last = 0.0
    for v in values:
        last = float(v) if v is not None else last
        out.append(last)
    return out


def model_lines(history: RigHistory | None, width: int = 40) -> list[Content]:
    """tokens/s per model over the history: a text sparkline each (rig-wide, all workers)."""
    from galaxy_tui.render import sparkline

    if history is None or not history.models:
        return [Content.styled("  no LLM generation in the history yet", "$text-muted")]
    out = []
    for m in history.models:
        known = [v for v in m.tokens_per_s if v is not None]
        top = max(known) if known else 0.0
        last = next((v for v in reversed(m.tokens_per_s) if v is not None), None)
        line = sparkline([v or 0.0 for v in m.tokens_per_s], width, top=top or 1.0)
        out.append(Content.assemble((f"  {m.model[:24]:<24} ", "bold"), (line, "$accent"),
                                    (f"  now {_fmt(last, '')}  peak {_fmt(top, '')} tok/s", "$text-muted")))
    return out


def process_rows(gpu: GpuView | None) -> list[tuple[str, str, str, str]]:
    """(pid, name, VRAM, owner) per process on the card, biggest first; N/A when the driver does not say."""
    if gpu is None:
        return []
    procs = sorted(gpu.processes, key=lambda p: -(p.used_mb or 0.0))
    return [(str(p.pid), p.name or "N/A", "N/A" if p.used_mb is None else f"{p.used_mb:,.0f} MB",
             "galaxy" if p.galaxy else "other") for p in procs]


def header(index: int, gpu: GpuView | None, worker: WorkerView | None) -> Content:
    if gpu is None:
        return Content.styled(f"GPU {index} is not in the latest snapshot", "$warning")
    bits: list[Content | str | tuple[str, str]] = [(gpu.name, "bold")]
    if gpu.uuid:
        bits.append((f"  {gpu.uuid}", "$text-muted"))
    bits.append("\n")
    if worker is not None:
        bits += ["worker ", (worker.worker_id, "bold"), f" {worker.state}  "]
    bits += [f"residency {gpu.residency}", f" ({gpu.resident_model})" if gpu.resident_model else ""]
    if worker is not None and worker.current_task:
        bits += ["\ntask ", (worker.task_name or worker.current_task, "bold"),
                 f"  {worker.tokens_per_s:.1f} tok/s" if worker.tokens_per_s else "", ("  (enter: details)", "$text-muted")]
    extras = []
    if gpu.fan_pct is not None:
        extras.append(f"fan {gpu.fan_pct:.0f}%")
    if gpu.clock_sm_mhz is not None:
        extras.append(f"SM {gpu.clock_sm_mhz:.0f} MHz")
    if gpu.clock_mem_mhz is not None:
        extras.append(f"mem {gpu.clock_mem_mhz:.0f} MHz")
    if gpu.throttle:
        extras.append("throttle " + ",".join(gpu.throttle))
    if extras:
        bits += ["\n", ("  ".join(extras), "$text-muted")]
    if gpu.thermal_hold:
        bits += ["\n", ("THERMAL HOLD: the worker takes no new task until the card cools", "$error bold")]
    if gpu.degraded:
        bits += ["\n", (f"DEGRADED: {gpu.degraded}", "$error bold")]
    return Content.assemble(*bits)


def find_gpu(snap: Snapshot | None, index: int, rig: str | None = None) -> tuple[GpuView | None, WorkerView | None]:
    """GPU ``index`` of ``rig`` (None: the one rig of a single-rig view) and the worker it serves."""
    if snap is None:
        return None, None
    gpu = next((g for g in snap.gpus if g.index == index and g.rig == rig), None)
    worker = None
    if gpu is not None and gpu.worker_id:
        worker = next((w for w in snap.workers if w.worker_id == gpu.worker_id and w.rig == rig), None)
    if worker is None:
        worker = next((w for w in snap.workers if index in w.gpus and w.rig == rig), None)
    return gpu, worker


def file_history(root: Path) -> HistorySource:
    from engine.history import read_history
    from engine.paths import RigPaths

    path = RigPaths(Path(root)).history

    def read() -> RigHistory | None:
        return read_history(path)

    return read


class GpuDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    GpuDetailScreen { align: center middle; }
    #gpu-detail-body { width: 100%; height: 100%; border: round $accent; background: $surface; padding: 0 1; }
    #gpu-detail-body Sparkline { height: 3; }
    GpuDetailScreen.-short #gpu-detail-body Sparkline { height: 1; }
    #gpu-detail-body .gpu-detail-label { height: 1; }
    #gpu-procs { height: auto; max-height: 12; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close"),
        Binding("enter", "task", "Task detail"),
        Binding("left,h", "step(-1)", "Prev GPU"),
        Binding("right,l", "step(1)", "Next GPU"),
    ]

    def __init__(self, index: int, root: Path | None, history: HistorySource | None = None, *,
                 rig: str | None = None) -> None:
        """``rig``: the card's rig in a cluster view; ``root``: None for another host's rig (its history
        file is on its own disk: the charts show the snapshot's last minute)."""
        super().__init__()
        self.index = index
        self.rig = rig
        self.root = root
        self.history_source = history if history is not None else (file_history(root) if root else None)
        self.history: RigHistory | None = None
        self.history_error: str | None = None
        self._seen: Snapshot | None = None
        self._rows: list[tuple[str, str, str, str]] | None = None
        self._loading = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="gpu-detail-body"):
            yield Static(id="gpu-detail-head")
            for key in ("util", "mem", "temp", "power"):
                yield Static(classes="gpu-detail-label", id=f"label-{key}")
                yield Sparkline([], id=f"spark-{key}")
            yield Static(Content.styled("tokens/s per model (all workers)", "bold"))
            yield Static(id="gpu-detail-models")
            yield Static(Content.styled("processes on this GPU", "bold"))
            table: DataTable[str] = DataTable(id="gpu-procs", cursor_type="row", zebra_stripes=True)
            table.add_columns("PID", "process", "VRAM", "owner")
            yield table
            yield Static(id="gpu-detail-note")

    def on_mount(self) -> None:
        self.set_class(self.app.size.height < 30, "-short")  # 80x24: one-line charts, the processes in view
        self._render_all()
        self.set_interval(POLL_S, self._follow_snapshot)
        if self.history_source is not None:
            self._reload()
            self.set_interval(HISTORY_RELOAD_S, self._reload)

    # ---------- data ----------
    def _snapshot(self) -> Snapshot | None:
        return getattr(self.app, "snapshot", None)

    def _follow_snapshot(self) -> None:
        snap = self._snapshot()
        if snap is not None and snap is not self._seen:
            self._render_all()

    def _reload(self) -> None:
        if not self._loading:
            self._loading = True
            self._load()

    @work(thread=True, group="gpu-detail")
    def _load(self) -> None:
        source = self.history_source
        try:
            history, error = (source() if source else None), None
        except (OSError, ValueError) as exc:  # SchemaError is a ValueError
            history, error = None, str(exc)
        self.app.call_from_thread(self._loaded, history, error)

    def _loaded(self, history: RigHistory | None, error: str | None) -> None:
        self._loading = False
        if history is not None or error is not None:
            self.history, self.history_error = history, error
        self._render_all()

    # ---------- view ----------
    def _render_all(self) -> None:
        snap = self._snapshot()
        self._seen = snap
        gpu, worker = find_gpu(snap, self.index, self.rig)
        body = self.query_one("#gpu-detail-body")
        body.border_title = f"GPU {self.index}" + (f" on rig {self.rig}" if self.rig else "") + ("  SIMULATED" if gpu is not None and gpu.simulated else "")
        body.border_subtitle = "esc close · ←/→ other GPU · enter task"
        self.query_one("#gpu-detail-head", Static).update(header(self.index, gpu, worker))
        charts, span = charts_for(self.index, gpu, self.history)
        for c in charts:
            self.query_one(f"#label-{c.key}", Static).update(chart_label(c, span))
            self.query_one(f"#spark-{c.key}", Sparkline).data = spark_data(c.values)
        self.query_one("#gpu-detail-models", Static).update(Content("\n").join(model_lines(self.history)))
        table = self.query_one("#gpu-procs", DataTable)
        rows = process_rows(gpu)
        if rows != self._rows:  # rebuilt only on a change: the cursor stays put
            self._rows = rows
            table.clear()
            for row in rows:  # Text cells: a process name is data, never markup
                table.add_row(*(Text(cell) for cell in row))
        note = "" if rows else "no process holds VRAM on this GPU (or the driver does not list them)"
        if self.history is None:
            note += ("\n" if note else "") + (self.history_error or
                                              "no supervisor history yet: charts show the snapshot's last minute")
        self.query_one("#gpu-detail-note", Static).update(Content.styled(note, "$text-muted"))

    # ---------- keys ----------
    def action_close(self) -> None:
        self.dismiss(None)

    def action_step(self, delta: int) -> None:
        snap = self._snapshot()
        indexes = sorted(g.index for g in snap.gpus if g.rig == self.rig) if snap else []  # this rig's
        if not indexes:
            return
        pos = indexes.index(self.index) if self.index in indexes else 0
        self.index = indexes[(pos + delta) % len(indexes)]
        self._render_all()

    def action_task(self) -> None:
        snap = self._snapshot()
        _gpu, worker = find_gpu(snap, self.index, self.rig)
        if worker is None or not worker.current_task or snap is None:
            self.notify("no task is running on this GPU", severity="information")
            return
        from galaxy_tui.screens.task_detail import TaskDetailScreen

        view = next((t for t in snap.running if t.task_id == worker.current_task), None) or TaskView(
            task_id=worker.current_task, name=worker.task_name or worker.current_task,
            task_class=worker.task_class or "?", status="running", worker_id=worker.worker_id,
            started_at=worker.task_started_at, tokens_per_s=worker.tokens_per_s)
        self.app.push_screen(TaskDetailScreen(view, self.root))
