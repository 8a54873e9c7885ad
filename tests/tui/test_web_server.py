"""galaxy web's guard in-process (no supervisor, no dashboard process): listen parsing, the token
on page and websocket, the origin check, the per-tab command and the redacted log path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine.cli.cmd_web import parse_listen
from galaxy_tui.web import GalaxyWebServer, WebOptions, dashboard_command, redact_path


@pytest.mark.parametrize(("text", "want"), [("127.0.0.1:8088", ("127.0.0.1", 8088)), ("[::1]:0", ("::1", 0)),
                                            ("0.0.0.0:80", ("0.0.0.0", 80))])
def test_listen_parses(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["8088", ":8088", "host:", "host:http", "host:70000"])
def test_bad_listen_is_named(text: str) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_listen(text)


def test_each_tab_runs_attach_read_only_unless_allowed() -> None:
    ro = dashboard_command(Path("/r o/shared"), None, read_only=True)
    assert ro.endswith("attach --read-only") and "'/r o/shared'" in ro
    rw = dashboard_command(Path("/r"), Path("/etc/galaxy/galaxy.toml"), read_only=False)
    assert rw.endswith(" attach") and "--config /etc/galaxy/galaxy.toml" in rw


def test_log_path_hides_the_token() -> None:
    assert redact_path("/ws/s3cret") == "/ws/<token>"
    assert redact_path("/static/js/textual.js") == "/static/js/textual.js"


async def _statuses(server: GalaxyWebServer, paths: list[tuple[str, dict[str, str]]]) -> list[int]:
    async with TestClient(TestServer(await server._make_app())) as client:
        out = []
        for path, headers in paths:
            resp = await client.get(path, headers=headers)
            out.append(resp.status)
            if resp.status == 200 and path.startswith("/?"):
                assert f"/ws/{server.token}" in await resp.text()
        return out


def test_write_server_wants_the_token_everywhere_but_static(tmp_path: Path) -> None:
    server = GalaxyWebServer(WebOptions(root=tmp_path, config=None, allow_write=True), "tok-123")
    got = asyncio.run(_statuses(server, [("/", {}), ("/?token=nope", {}), ("/?token=tok-123", {}),
                                         ("/ws/nope", {}), ("/ws", {}), ("/static/css/xterm.css", {})]))
    assert got == [403, 403, 200, 403, 403, 200]


def test_read_only_server_needs_no_token_but_refuses_other_origins(tmp_path: Path) -> None:
    server = GalaxyWebServer(WebOptions(root=tmp_path, config=None), "ignored")
    assert server.token is None
    got = asyncio.run(_statuses(server, [("/", {}), ("/ws", {"Origin": "http://evil.example"})]))
    assert got == [200, 403]
