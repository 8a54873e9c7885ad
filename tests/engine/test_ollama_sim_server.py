"""The simulated Ollama speaks Ollama's documented REST API (docs/api.md), byte for byte
where the client cares: NDJSON streaming, nanosecond durations, keep_alive, /api/ps."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest

from engine.clock import FakeClock
from engine.sim import InMemoryVramLedger, SimModelSpec, SimulatedOllamaServer, keep_alive_seconds
from engine.sim.ollama_models import FOREVER_S, lorem_tokens

MODEL = "qwen2.5:7b"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture
def ledger() -> InMemoryVramLedger:
    return InMemoryVramLedger(gpu_count=2)


@pytest.fixture
def server(clock: FakeClock, ledger: InMemoryVramLedger):
    spec = SimModelSpec(MODEL, size_mb=4000, load_s=90, tokens_per_s=25, prompt_tokens_per_s=100)
    with SimulatedOllamaServer([spec], gpu_ids=(0, 1), ledger=ledger, time_scale=0.0, clock=clock) as s:
        yield s


def post(server: SimulatedOllamaServer, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.host + path, json=body, timeout=10)


def test_streaming_generate_is_ndjson_with_stats_in_the_final_line(server) -> None:
    with httpx.stream("POST", server.host + "/api/generate", json={"model": MODEL, "prompt": "why is the sky blue"},
                      timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in r.iter_lines() if line]
    body, final = lines[:-1], lines[-1]
    assert body and all(not c["done"] and c["model"] == MODEL for c in body)
    assert final["done"] is True and final["response"] == "" and final["done_reason"] == "stop"
    assert final["eval_count"] == len(body)
    assert final["eval_duration"] == round(len(body) / 25 * 1e9)  # nanoseconds, at the configured rate
    assert final["load_duration"] == 90_000_000_000  # a cold load, simulated 90 s
    assert final["prompt_eval_count"] == 5
    assert final["total_duration"] >= final["load_duration"] + final["eval_duration"]


def test_stream_false_answers_one_object_with_the_whole_text(server) -> None:
    r = post(server, "/api/generate", {"model": MODEL, "prompt": "hello", "stream": False})
    data = r.json()
    tokens, reason = lorem_tokens("0:hello")
    assert data["response"] == "".join(tokens) and data["done_reason"] == reason
    assert data["eval_count"] == len(tokens)


def test_text_is_deterministic_per_prompt_and_num_predict_stops_with_length(server) -> None:
    a = post(server, "/api/generate", {"model": MODEL, "prompt": "same", "stream": False}).json()
    b = post(server, "/api/generate", {"model": MODEL, "prompt": "same", "stream": False}).json()
    c = post(server, "/api/generate", {"model": MODEL, "prompt": "other", "stream": False}).json()
    assert a["response"] == b["response"] != c["response"]
    short = post(server, "/api/generate", {"model": MODEL, "prompt": "same", "stream": False,
                                           "options": {"num_predict": 3}}).json()
    assert short["eval_count"] == 3 and short["done_reason"] == "length"
    assert b["load_duration"] < 1e9  # warm: the second request did not load again


def test_chat_streams_message_content(server) -> None:
    r = post(server, "/api/chat", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert all(x["message"]["role"] == "assistant" for x in lines)
    assert lines[-1]["done"] and lines[-1]["eval_count"] == len(lines) - 1


def test_empty_prompt_loads_and_keep_alive_zero_unloads(server, ledger) -> None:
    r = post(server, "/api/generate", {"model": MODEL})
    assert r.json()["done"] is True and r.json()["done_reason"] == "load"
    assert {p.name for p in ledger.sample()[0].processes} == {server.owner(MODEL)}
    assert ledger.used_by(0)[server.owner(MODEL)] == pytest.approx(2000)  # split over the group's 2 GPUs
    r = post(server, "/api/generate", {"model": MODEL, "keep_alive": 0})
    assert r.json() == {**r.json(), "model": MODEL, "response": "", "done": True, "done_reason": "unload"}
    assert httpx.get(server.host + "/api/ps").json() == {"models": []}
    assert ledger.used_by(0) == {} and ledger.used_by(1) == {}


def test_chat_with_no_messages_and_keep_alive_zero_unloads(server) -> None:
    post(server, "/api/generate", {"model": MODEL})
    r = post(server, "/api/chat", {"model": MODEL, "messages": [], "keep_alive": 0})
    assert r.json()["done_reason"] == "unload" and r.json()["message"]["content"] == ""
    assert server.loaded_models() == []


def test_ps_reports_size_vram_expires_at_digest_details(server, clock) -> None:
    post(server, "/api/generate", {"model": MODEL, "keep_alive": "10m"})
    (m,) = httpx.get(server.host + "/api/ps").json()["models"]
    assert m["name"] == m["model"] == MODEL
    assert m["size"] == m["size_vram"] == 4000 * 1024 * 1024
    assert len(m["digest"]) == 64 and m["details"]["format"] == "gguf"
    expires = datetime.fromisoformat(m["expires_at"].replace("Z", "+00:00")).timestamp()
    assert expires == pytest.approx(clock.now() + 600)


def test_keep_alive_runs_out_and_the_model_leaves(server, clock, ledger) -> None:
    post(server, "/api/generate", {"model": MODEL, "prompt": "x", "keep_alive": "5m", "stream": False})
    clock.advance(299)
    assert server.loaded_models() == [MODEL]
    clock.advance(2)
    assert server.loaded_models() == []
    assert ledger.used_by(0) == {}


def test_keep_alive_zero_with_a_prompt_unloads_after_answering(server) -> None:
    r = post(server, "/api/generate", {"model": MODEL, "prompt": "x", "keep_alive": 0, "stream": False})
    assert r.json()["done_reason"] == "stop" and r.json()["response"]
    assert server.loaded_models() == []


def test_negative_keep_alive_keeps_the_model_forever(server, clock) -> None:
    post(server, "/api/generate", {"model": MODEL, "keep_alive": -1})
    clock.advance(10 * 365 * 86400)
    assert server.loaded_models() == [MODEL]


@pytest.mark.parametrize("value,seconds", [
    ("5m", 300.0), ("1h30m", 5400.0), ("90s", 90.0), ("0", 0.0), (0, 0.0), (300, 300.0), ("1.5h", 5400.0),
    (-1, FOREVER_S), ("-1m", FOREVER_S), ("250ms", 0.25)])
def test_keep_alive_parses_ollama_durations(value, seconds) -> None:
    assert keep_alive_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["5 minutes", "m", "", True, None, "5x"])
def test_keep_alive_rejects_what_ollama_rejects(value) -> None:
    with pytest.raises(ValueError):
        keep_alive_seconds(value)


def test_errors_are_json_with_http_status(server) -> None:
    assert post(server, "/api/generate", {"model": "nope:1b", "prompt": "x"}).status_code == 404
    assert "not found" in post(server, "/api/generate", {"model": "nope:1b", "prompt": "x"}).json()["error"]
    assert post(server, "/api/generate", {"prompt": "x"}).status_code == 400
    assert post(server, "/api/generate", {"model": MODEL, "keep_alive": "soon"}).status_code == 400
    assert httpx.post(server.host + "/api/generate", content=b"{not json", timeout=5).status_code == 400


def test_tags_version_show(server) -> None:
    tags = httpx.get(server.host + "/api/tags").json()["models"]
    assert [t["name"] for t in tags] == [MODEL] and tags[0]["size"] == 4000 * 1024 * 1024
    assert httpx.get(server.host + "/api/version").json()["version"]
    show = post(server, "/api/show", {"model": MODEL}).json()
    assert show["details"]["family"] == "qwen2"
    assert post(server, "/api/show", {"model": "nope"}).status_code == 404


def test_failed_load_answers_500_and_a_retry_loads(server, ledger) -> None:
    server.specs[MODEL].fail_next_loads = 1
    r = post(server, "/api/generate", {"model": MODEL, "prompt": "x"})
    assert r.status_code == 500 and "llama runner" in r.json()["error"]
    assert server.loaded_models() == [] and ledger.used_by(0) == {}
    assert post(server, "/api/generate", {"model": MODEL, "prompt": "x", "stream": False}).status_code == 200


def test_mid_stream_failure_is_an_error_line(server) -> None:
    server.specs[MODEL].fail_mid_stream = 1
    lines = [json.loads(x) for x in post(server, "/api/generate", {"model": MODEL, "prompt": "x"}).text.splitlines()]
    assert "error" in lines[-1] and not any(x.get("done") for x in lines)


def test_cpu_fallback_reports_size_vram_below_size_and_holds_only_that(server, ledger) -> None:
    server.specs[MODEL].gpu_fraction = 0.25
    post(server, "/api/generate", {"model": MODEL})
    (m,) = httpx.get(server.host + "/api/ps").json()["models"]
    assert m["size_vram"] == m["size"] // 4
    assert ledger.used_by(0)[server.owner(MODEL)] == pytest.approx(500)


def test_a_model_too_big_for_the_cards_fails_to_load(clock) -> None:
    small = InMemoryVramLedger(gpu_count=1, mem_total_mb=2048)
    with SimulatedOllamaServer([SimModelSpec(MODEL, size_mb=4000)], ledger=small, time_scale=0, clock=clock) as s:
        r = post(s, "/api/generate", {"model": MODEL})
        assert r.status_code == 500 and "memory" in r.json()["error"]
        assert s.loaded_models() == []


def test_one_model_at_a_time_evicts_the_other(clock, ledger) -> None:
    specs = [SimModelSpec("a:1b", size_mb=1000), SimModelSpec("b:1b", size_mb=1000)]
    with SimulatedOllamaServer(specs, gpu_ids=(0,), ledger=ledger, time_scale=0, clock=clock) as s:
        post(s, "/api/generate", {"model": "a:1b"})
        post(s, "/api/generate", {"model": "b:1b"})
        assert s.loaded_models() == ["b:1b"] and list(ledger.used_by(0)) == [s.owner("b:1b")]
