"""The ``llm`` task handler, and the ``load_llm``/``unload_llm`` resource tasks.

The backend comes from the worker's context (``ctx.extras``): an ``LlmBackend`` under
"backend", or built from "endpoint" and "backend_kind" ("ollama" | "openai"). Output streams
to ``ctx.report_progress`` (the tail of the text and live tokens/s) so the dashboard shows
it while the task runs; ``ctx.should_stop`` and ``ctx.deadline`` are checked on every chunk.

The LLM's weights live in the inference server, not in this process, so this handler has
no resident model of its own: the ResidencyManager loads and unloads through the backend.
For resource tasks it reports what the manager did (``ctx.extras["residency_report"]``),
and does the load/unload itself when the worker runs without a manager.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.escalation.service import LOW_CONFIDENCE_MARK
from engine.handlers.base import HandlerResult, TaskContext, TaskFailure
from engine.handlers.llm_io import LOW_CONFIDENCE_RE, llm_prompt, record_sample, write_output
from engine.inference.protocol import BackendError, BackendTimeout, GenerationResult, LlmBackend
from engine.model import OUTPUT_TAIL_CHARS, Task, TaskType
from engine.routing.routed_backend import EscalationNeeded, RoutedBackend, UnroutableRequest

PROGRESS_EVERY_S = 0.25  # the dashboard refreshes a few times a second; more is noise
BackendFactory = Callable[[str, str], LlmBackend]


class _Stop(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def default_backend_factory(kind: str, endpoint: str) -> LlmBackend:
    if kind == "ollama":
        from engine.inference.ollama_backend import OllamaBackend
        return OllamaBackend(endpoint)
    if kind == "openai":
        from engine.inference.openai_backend import OpenAICompatBackend  # H4's backend, imported lazily
        return OpenAICompatBackend(endpoint)
    raise TaskFailure(f"unknown backend_kind {kind!r} (ollama, openai or router)", retryable=False)


class LlmHandler:
    def __init__(self, backend_factory: BackendFactory = default_backend_factory,
                 clock: Callable[[], float] = time.time, keep_alive: str | int = -1) -> None:
        self._factory = backend_factory
        self._now = clock
        self._keep_alive = keep_alive
        self._backends: dict[tuple[str, str], LlmBackend] = {}

    @property
    def resident_model(self) -> str | None:
        return None  # the model lives in the inference server; residency manages it there

    def release(self) -> None:
        """Nothing held in this process."""

    def backend_for(self, ctx: TaskContext) -> LlmBackend:
        given = ctx.extras.get("backend")
        if given is not None and hasattr(given, "generate"):
            return given  # type: ignore[no-any-return]
        # ``galaxy worker --backend ollama`` puts the kind under "backend"; "backend_kind" also works.
        kind = str(ctx.extras.get("backend_kind") or (given if isinstance(given, str) else "") or "ollama")
        if kind == "none":
            raise TaskFailure(f"worker {ctx.worker_id} has no LLM backend (backend = none)", retryable=False)
        if kind == "router":
            if ("router", "") not in self._backends:
                from engine.paths import RigPaths
                from engine.routing.snapshot_router import SnapshotRoutedBackend

                root = ctx.extras.get("root")
                if not isinstance(root, str):
                    raise TaskFailure("a router worker needs the rig root to find the cluster's nodes",
                                      retryable=False)
                self._backends[("router", "")] = SnapshotRoutedBackend(RigPaths(Path(root)).snapshot,
                                                                       ctx.worker_id)
            return self._backends[("router", "")]
        endpoint = ctx.extras.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise TaskFailure(f"worker {ctx.worker_id} has no LLM endpoint configured", retryable=False)
        key = (kind, endpoint)
        if key not in self._backends:
            self._backends[key] = self._factory(kind, endpoint)
        return self._backends[key]

    def run(self, task: Task, ctx: TaskContext) -> HandlerResult:
        if task.type is TaskType.LOAD_LLM:
            return self._load(task, ctx)
        if task.type is TaskType.UNLOAD_LLM:
            return self._unload(task, ctx)
        if task.type is not TaskType.LLM:
            raise TaskFailure(f"LlmHandler cannot run a {task.type.value} task", retryable=False)
        return self._generate(task, ctx)

    # --- llm ---
    def _generate(self, task: Task, ctx: TaskContext) -> HandlerResult:
        if task.requires_external:
            raise TaskFailure("task requires an external model: it waits for an operator-approved escalation "
                              "(galaxy escalations)", retryable=False)
        model = _model_of(task)
        system, prompt = llm_prompt(task, ctx.workdir)

        options = task.params.get("options")
        if options is not None and not isinstance(options, dict):
            raise TaskFailure(f"params.options must be an object, got {type(options).__name__}", retryable=False)
        backend = self.backend_for(ctx)
        remaining = ctx.deadline - self._now()
        if remaining <= 0:
            raise TaskFailure("deadline passed before the task started", retryable=True)

        pieces: list[str] = []
        started = [time.perf_counter()]
        last_report = [0.0]
        fell_back = [""]  # one line per node the router gave up on; heads the live output

        def live_tail() -> str:
            return (fell_back[0] + "".join(pieces))[-OUTPUT_TAIL_CHARS:]

        def on_fallback(node: str, why: str) -> None:
            """The router moved to another node: its answer starts over, so drop the partial text."""
            pieces.clear()
            fell_back[0] += f"[fell back from {node}: {why[:200]}]\n"
            started[0], last_report[0] = time.perf_counter(), 0.0
            ctx.report_progress(live_tail(), None)

        def on_chunk(text: str) -> None:
            pieces.append(text)
            if ctx.should_stop():
                raise _Stop("stopped: the task was cancelled or handed back")
            if self._now() > ctx.deadline:
                raise _Stop(f"deadline passed after {len(pieces)} chunks")
            now = time.perf_counter()
            if now - last_report[0] >= PROGRESS_EVERY_S:
                last_report[0] = now
                elapsed = now - started[0]
                live_tps = len(pieces) / elapsed if elapsed > 0 else None  # one chunk is one token in Ollama
                ctx.report_progress(live_tail(), live_tps)

        routing: dict[str, Any] = {}
        if isinstance(backend, RoutedBackend):
            routing = {"tier": task.tier, "requires_external": task.requires_external, "on_fallback": on_fallback}
        try:
            result = backend.generate(model, prompt, system=system, options=options,
                                      keep_alive=ctx.extras.get("keep_alive", self._keep_alive),
                                      on_chunk=on_chunk, timeout_s=remaining, **routing)
        except (EscalationNeeded, UnroutableRequest) as exc:
            raise TaskFailure(str(exc), retryable=False) from exc
        except _Stop as stop:
            raise TaskFailure(stop.why, retryable=True, output_tail=live_tail()) from None
        except BackendTimeout as exc:
            raise TaskFailure(f"LLM timed out: {exc}", retryable=True,
                              output_tail=live_tail()) from exc
        except BackendError as exc:
            raise TaskFailure(f"LLM backend failed: {exc}", retryable=True,
                              output_tail=live_tail()) from exc
        ctx.report_progress(result.text[-OUTPUT_TAIL_CHARS:], result.tokens_per_s)
        low_confidence = LOW_CONFIDENCE_RE.search(result.text) is not None
        record_sample(ctx, task, system, prompt, result.text, "low_confidence" if low_confidence else "ok",
                      backend.name, result.tokens_per_s, self._now())
        if low_confidence:
            raise TaskFailure(f"the local model marked its answer {LOW_CONFIDENCE_MARK} ({model})",
                              retryable=False, output_tail=result.text[-OUTPUT_TAIL_CHARS:])
        out = _result_dict(result, backend.name)
        if isinstance(backend, RoutedBackend) and backend.last_node:
            out["routed_to"] = backend.last_node
        output = task.params.get("output")
        if isinstance(output, str) and output:
            out["output"] = str(write_output(ctx.workdir, output, result.text))
        report = ctx.extras.get("residency_report")
        if isinstance(report, dict) and report.get("action") == "llm" and report.get("loaded_now"):
            # the residency manager cold-loaded the model just before: that is this task's load time
            out["load_s"] = round(float(report.get("load_s") or 0.0) + (out["load_s"] or 0.0), 4)
            out["cold_load"] = True
        return HandlerResult(result=out, output_tail=result.text[-OUTPUT_TAIL_CHARS:],
                             tokens_generated=result.eval_count, tokens_per_s=result.tokens_per_s,
                             model=result.model)

    # --- resource tasks ---
    def _load(self, task: Task, ctx: TaskContext) -> HandlerResult:
        model = _model_of(task)
        report = ctx.extras.get("residency_report")
        if isinstance(report, dict) and report.get("action") == "load_llm":
            return HandlerResult(result=dict(report, backend=self.backend_for(ctx).name), model=model)
        backend = self.backend_for(ctx)
        try:
            r = backend.load(model, keep_alive=ctx.extras.get("keep_alive", self._keep_alive))
        except BackendError as exc:
            raise TaskFailure(f"could not load {model}: {exc}", retryable=True) from exc
        return HandlerResult(result={"action": "load_llm", "model": model, "backend": backend.name,
                                     "load_s": (r.load_duration_ns or 0) / 1e9}, model=model)

    def _unload(self, task: Task, ctx: TaskContext) -> HandlerResult:
        report = ctx.extras.get("residency_report")
        if isinstance(report, dict) and report.get("action") == "unload_llm":
            return HandlerResult(result=dict(report))
        backend = self.backend_for(ctx)
        try:
            names = [task.model] if task.model else [m.name for m in backend.loaded()]
            for name in names:
                backend.unload(name)
        except BackendError as exc:
            raise TaskFailure(f"could not unload: {exc}", retryable=True) from exc
        return HandlerResult(result={"action": "unload_llm", "unloaded": names, "backend": backend.name})


def _model_of(task: Task) -> str:
    model = task.model or task.params.get("model")
    if not isinstance(model, str) or not model.strip():
        raise TaskFailure(f"{task.type.value} task needs a model (task.model)", retryable=False)
    return model


def _result_dict(r: GenerationResult, backend: str) -> dict[str, Any]:
    def s(ns: int | None) -> float | None:
        return None if ns is None else round(ns / 1e9, 4)

    return {"text": r.text, "model": r.model, "backend": backend, "done_reason": r.done_reason,
            "tokens": r.eval_count, "tokens_per_s": None if r.tokens_per_s is None else round(r.tokens_per_s, 2),
            "prompt_tokens": r.prompt_eval_count, "prompt_eval_s": s(r.prompt_eval_duration_ns),
            "eval_s": s(r.eval_duration_ns), "load_s": s(r.load_duration_ns), "total_s": s(r.total_duration_ns)}
