"""``galaxy web`` against a running supervisor on the simulated rig: the token guard, read-only
refusing commands (and the same key sending one with --allow-write), and the page in headless
Chromium (skipped with the reason when chromium is missing; scripts/test.sh installs it).

GALAXY_DOCS_IMAGES=1 also writes the browser screenshot to docs/img/web.png (with the live demo).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from web_browser import chromium, screenshot

from engine.fdwait import readable

REPO = Path(__file__).resolve().parents[2]
GALAXY = [sys.executable, "-m", "engine.cli.main"]
CARD = "GTX 1060 6GB"  # the simulated cards' name, on each GPU card
DOCS_IMAGES = os.environ.get("GALAXY_DOCS_IMAGES") == "1"


def galaxy(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GALAXY, "--root", str(root), *args], check=False, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("web") / "shared"
    up = galaxy(root, "up", "--sim", "--no-dashboard", *(["--demo"] if DOCS_IMAGES else []))
    assert up.returncode == 0, up.stderr
    try:
        yield root
    finally:
        galaxy(root, "down")


@dataclass
class Web:
    url: str
    base: str
    token: str | None
    log: Path


@contextmanager
def web_server(root: Path, tmp: Path, *args: str) -> Iterator[Web]:
    log = tmp / f"web-{len(list(tmp.glob('web-*')))}.err"
    with open(log, "wb") as err:
        proc = subprocess.Popen([*GALAXY, "--root", str(root), "web", "--listen", "127.0.0.1:0", *args],
                                stdout=subprocess.PIPE, stderr=err, cwd=REPO)
    try:
        assert proc.stdout is not None
        ready = readable([proc.stdout.fileno()], 60)  # poll: the test process may hold fds > 1024
        line = proc.stdout.readline().decode() if ready else ""
        found = re.search(r"(http://\S+?)/(\?token=(\S+))?\s", line)
        assert found, f"no URL from galaxy web: {line!r} {log.read_text()}"
        yield Web(url=found.group(0).strip(), base=found.group(1), token=found.group(3), log=log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ws_url(web: Web, token: str | None) -> str:
    path = f"/ws/{token}" if token is not None else "/ws"
    return web.base.replace("http://", "ws://") + path + "?width=120&height=40"


async def read_until(ws: aiohttp.ClientWebSocketResponse, text: str, seen: list[str], timeout: float = 90) -> None:
    """Collect the dashboard's terminal output (escape codes dropped) until ``text`` shows up."""
    deadline = time.monotonic() + timeout
    while text not in "".join(seen):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {text!r} from the dashboard; last output: {''.join(seen)[-400:]!r}")
        try:
            msg = await ws.receive(timeout=min(left, 5))
        except TimeoutError:
            continue
        if msg.type == aiohttp.WSMsgType.BINARY:
            seen.append(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", msg.data.decode("utf-8", "replace")))
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            raise AssertionError(f"the dashboard session ended: {''.join(seen)[-400:]!r}")


async def press_p_on_first_card(url: str, expect: str) -> str:
    """Open a dashboard session, wait for the GPU cards, press p (pause the selected card's worker)."""
    seen: list[str] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await read_until(ws, CARD, seen)
        await ws.send_json(["stdin", "p"])
        await read_until(ws, expect, seen)
        await ws.send_json(["stdin", "q"])
    return "".join(seen)


def paused_workers(root: Path) -> list[str]:
    out = galaxy(root, "status", "--json")
    assert out.returncode == 0, out.stderr
    workers = json.loads(out.stdout).get("workers", [])
    return [w["worker_id"] for w in workers if w.get("state") == "paused"]


async def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        await resp.read()
        return resp.status


async def ws_status(url: str, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers=headers) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_write_mode_needs_the_token(rig: Path, tmp_path: Path) -> None:
    with web_server(rig, tmp_path, "--allow-write") as web:
        assert web.token and len(web.token) >= 24
        assert asyncio.run(status_of(web.base + "/")) == 403
        assert asyncio.run(status_of(web.base + "/?token=wrong")) == 403
        assert asyncio.run(status_of(web.url)) == 200
        assert asyncio.run(ws_status(ws_url(web, "wrong"))) == 403
        assert asyncio.run(ws_status(ws_url(web, None))) in (403, 404)
        assert asyncio.run(ws_status(ws_url(web, web.token), {"Origin": "http://evil.example"})) == 403
        assert asyncio.run(status_of(web.base + "/static/js/textual.js")) == 200  # the package's own assets
    log = web.log.read_text()
    assert '"GET /" 403' in log and '"GET /ws/<token>" 403' in log  # requests are logged...
    assert web.token not in log  # ...without the token


def test_read_only_refuses_commands_and_write_mode_sends_them(rig: Path, tmp_path: Path) -> None:
    with web_server(rig, tmp_path) as web:
        assert web.token is None
        assert asyncio.run(status_of(web.base + "/")) == 200
        out = asyncio.run(press_p_on_first_card(ws_url(web, None), "read-only: would send pause"))
    assert "read-only: would send pause gpu" in out  # the dashboard's refusal, nothing sent
    assert paused_workers(rig) == []
    with web_server(rig, tmp_path, "--allow-write") as web:
        asyncio.run(press_p_on_first_card(ws_url(web, web.token), "sent pause"))
    deadline = time.monotonic() + 60
    while not paused_workers(rig) and time.monotonic() < deadline:
        time.sleep(0.5)
    paused = paused_workers(rig)
    assert len(paused) == 1, paused
    galaxy(rig, "resume", paused[0])


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (scripts/test.sh installs it with apt-get)")
def test_browser_shows_the_gpu_cards(rig: Path, tmp_path: Path) -> None:
    out = REPO / "docs" / "img" / "web.png" if DOCS_IMAGES else tmp_path / "web.png"
    with web_server(rig, tmp_path) as web:
        seen = screenshot(web.url, CARD, out, settle_s=8.0 if DOCS_IMAGES else 0.0, fresh=DOCS_IMAGES)
    assert CARD in seen and "read-only" in seen.lower()
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1280, 800)
