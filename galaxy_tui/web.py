"""``galaxy web``: the dashboard in a browser, through textual-serve.

Every browser tab gets its own ``galaxy attach`` process (textual-serve runs one per websocket),
read-only unless the server was started with ``--allow-write``. A writing server is reachable
only with the random token it prints: the page needs ``/?token=T``, its websocket ``/ws/T``
(textual-serve's page appends ``?width=..`` to the websocket URL, so the token goes in the path).
The static assets (xterm.js, css, fonts) are the package's own files and need no token.
Access-log lines carry the path with the token replaced. A websocket whose Origin is another site
is refused, so a page elsewhere cannot drive or read the dashboard through the operator's browser.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from textual_serve.server import Server, to_int

log = logging.getLogger("galaxy.web")

MAX_SESSIONS = 8  # each browser tab is a dashboard process (~1 s of CPU to start, ~60 MB)
TOKEN_SHOWN = "<token>"


@dataclass(frozen=True)
class WebOptions:
    root: Path
    config: Path | None
    host: str = "127.0.0.1"
    port: int = 8088
    allow_write: bool = False
    max_sessions: int = MAX_SESSIONS


def new_token() -> str:
    return secrets.token_urlsafe(24)


def dashboard_command(root: Path, config: Path | None, *, read_only: bool) -> str:
    """The shell command textual-serve starts per browser tab (it runs it through a shell)."""
    argv = [sys.executable, "-m", "engine.cli.main", "--root", str(root)]
    if config is not None:
        argv += ["--config", str(config)]
    argv.append("attach")
    if read_only:
        argv.append("--read-only")
    return shlex.join(argv)


def redact_path(path: str) -> str:
    """/ws/<anything> -> /ws/<token>: the websocket path holds the token."""
    return "/ws/" + TOKEN_SHOWN if path.startswith("/ws/") else path


class RedactedAccessLogger(AbstractAccessLogger):
    """One line per request without the query string (the page URL holds the token) or the token path."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %.3fs', request.remote, request.method, redact_path(request.path),
                         response.status, time)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser (or an old one): nothing to protect against
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


class GalaxyWebServer(Server):
    """textual-serve's Server with galaxy's guard: token, origin check, session cap, quiet logs."""

    def __init__(self, options: WebOptions, token: str | None) -> None:
        super().__init__(dashboard_command(options.root, options.config, read_only=not options.allow_write),
                         host=options.host, port=options.port, title="galaxy")
        self.options = options
        self.token = token if options.allow_write else None
        self.sessions = 0
        self.bound_port: int | None = None

    def url(self, host: str | None = None) -> str:
        port = self.bound_port if self.bound_port is not None else self.port
        where = host or self.host
        if ":" in where:
            where = f"[{where}]"
        query = f"?token={self.token}" if self.token else ""
        return f"http://{where}:{port}/{query}"

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        ws_path = "/ws/{token}" if self.token else "/ws"
        app.add_routes([
            web.get("/", self.handle_index, name="index"),
            web.get(ws_path, self._session, name="websocket"),
            web.static("/static", self.statics_path, name="static"),
        ])
        return app

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path.startswith("/static/"):
            return await handler(request)
        if self.token is not None:
            given = request.query.get("token", "") if request.path == "/" else request.match_info.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise web.HTTPForbidden(text="galaxy web: this server takes commands; open the URL it printed "
                                             "(with ?token=...)\n")
        if request.path.startswith("/ws") and not _same_origin(request):
            raise web.HTTPForbidden(text="galaxy web: websocket from another site refused\n")
        return await handler(request)

    async def _session(self, request: web.Request) -> web.StreamResponse:
        if self.sessions >= self.options.max_sessions:
            raise web.HTTPServiceUnavailable(text=f"galaxy web: {self.sessions} dashboards open already\n")
        self.sessions += 1
        try:
            return await self.handle_websocket(request)
        finally:
            self.sessions -= 1

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """URLs from the Host the browser used, so an SSH tunnel on another local port works too."""
        base = f"{request.scheme}://{request.host}"
        ws_base = ("wss://" if request.scheme == "https" else "ws://") + request.host
        ws_url = f"{ws_base}/ws/{self.token}" if self.token else f"{ws_base}/ws"
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": ws_url,
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": "galaxy" + ("" if self.token else " (read-only)")},
        }

    async def run(self, announce: Callable[[str], None]) -> None:
        """Serve until SIGINT/SIGTERM; ``announce`` gets the URL to open once the port is bound."""
        runner = web.AppRunner(await self._make_app(), access_log_class=RedactedAccessLogger,
                               access_log=log)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        server = site._server  # aiohttp keeps the bound sockets here; port 0 asks the OS for one
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        announce(self.url())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()


def serve(options: WebOptions, announce: Callable[[str], None]) -> int:
    """Run the web server in this process; OSError (port busy, bad address) comes back to the CLI."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = GalaxyWebServer(options, new_token() if options.allow_write else None)
    asyncio.run(server.run(announce))
    return 0
