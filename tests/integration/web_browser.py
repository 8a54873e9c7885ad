"""Headless Chromium driven over the DevTools protocol (a websocket; aiohttp comes with textual-serve).

Enough for the browser test of ``galaxy web``: open a URL, wait until the page's websocket has
carried a given text (the terminal is drawn on a canvas, so the DOM never holds it), save a PNG.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio"]

# Keeps what the page's websockets receive (decoded) in window.__galaxyText, the last 200k chars.
RECORD_WEBSOCKETS = """
(() => {
  const Base = window.WebSocket;
  window.__galaxyText = '';
  window.WebSocket = class extends Base {
    constructor(...args) {
      super(...args);
      const dec = new TextDecoder();
      this.addEventListener('message', (e) => {
        const t = typeof e.data === 'string' ? e.data : dec.decode(new Uint8Array(e.data), {stream: true});
        window.__galaxyText = (window.__galaxyText + t).slice(-200000);
      });
    }
  };
})();
"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Cdp:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.last_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        call_id = self.last_id
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            msg = json.loads(await self.ws.receive_str())
            if msg.get("id") == call_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))


def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    marker = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with status {proc.returncode}")
        time.sleep(0.2)
    raise TimeoutError(f"chromium wrote no {marker} in {timeout:g}s")


async def _shoot(port: int, url: str, wait_for: str, out: Path, size: tuple[int, int], timeout: float,
                settle_s: float, fresh: bool) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
            pages = [t for t in await resp.json() if t.get("type") == "page"]
        async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = Cdp(ws)
            await cdp.call("Page.enable")
            await cdp.call("Page.addScriptToEvaluateOnNewDocument", source=RECORD_WEBSOCKETS)
            await cdp.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1],
                           deviceScaleFactor=1, mobile=False)
            await cdp.call("Page.navigate", url=url)
            probe = (f"document.body !== null && document.body.classList.contains('-first-byte') && "
                     f"(window.__galaxyText || '').includes({json.dumps(wait_for)})")
            if fresh:  # the top bar's latest state is 'live HH:MM:SS', not 'STALE since' (a loaded box)
                probe += (" && (() => { const t = window.__galaxyText;"
                          " const live = [...t.matchAll(/live \\d\\d:\\d\\d:\\d\\d/g)].map(m => m.index);"
                          " return live.length > 0 && live[live.length - 1] > t.lastIndexOf('STALE'); })()")
            deadline = time.monotonic() + timeout
            while True:
                res = await cdp.call("Runtime.evaluate", expression=probe, returnByValue=True)
                if res.get("result", {}).get("value") is True:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the page never showed {wait_for!r} in {timeout:g}s")
                await asyncio.sleep(0.3)
            await asyncio.sleep(settle_s)  # e.g. a docs picture: let the first frames' notices pass
            if fresh and settle_s:
                while (await cdp.call("Runtime.evaluate", expression=probe, returnByValue=True)
                       ).get("result", {}).get("value") is not True and time.monotonic() < deadline + settle_s:
                    await asyncio.sleep(0.3)
            # xterm.js draws what arrived on the next animation frames
            await cdp.call("Runtime.evaluate", awaitPromise=True, expression=(
                "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))"))
            shot = await cdp.call("Page.captureScreenshot", format="png")
            out.write_bytes(base64.b64decode(shot["data"]))
            text = await cdp.call("Runtime.evaluate", expression="window.__galaxyText", returnByValue=True)
            return str(text.get("result", {}).get("value", ""))


def screenshot(url: str, wait_for: str, out: Path, *, size: tuple[int, int] = (1280, 800),
               timeout: float = 120.0, settle_s: float = 0.0, fresh: bool = False) -> str:
    """Open ``url``, wait until ``wait_for`` came over its websocket, save a PNG; the text seen."""
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("chromium")
    with tempfile.TemporaryDirectory(prefix="galaxy-chromium-") as profile:
        proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                 f"--window-size={size[0]},{size[1]}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = _devtools_port(Path(profile), proc, timeout=60)
            return asyncio.run(_shoot(port, url, wait_for, out, size, timeout, settle_s, fresh))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
