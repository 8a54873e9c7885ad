"""``galaxy web``: the dashboard in a browser (galaxy_tui/web.py, imported only when run).

Localhost by default; from another machine, tunnel: ``ssh -L 8088:127.0.0.1:8088 rig``.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_LISTEN = "127.0.0.1:8088"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("web", help="serve the dashboard to a browser (read-only unless --allow-write)")
    p.add_argument("--listen", default=DEFAULT_LISTEN,
                   help=f"HOST:PORT to listen on (default {DEFAULT_LISTEN}; reach it through an SSH tunnel)")
    p.add_argument("--allow-write", action="store_true",
                   help="let the browser send commands; the URL then needs the random token printed at start")
    p.set_defaults(func=run_web)


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[v6]:PORT' -> (host, port); ValueError names what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {text!r} is not HOST:PORT (e.g. 127.0.0.1:8088)")
    return host.strip("[]"), int(port)


def run_web(args: argparse.Namespace) -> int:
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"galaxy web: {exc}", file=sys.stderr)
        return 2
    from galaxy_tui.web import WebOptions, serve

    options = WebOptions(root=args.root, config=args.config, host=host, port=port, allow_write=args.allow_write)

    def announce(url: str) -> None:
        mode = "commands allowed: keep this URL private" if args.allow_write else "read-only"
        print(f"galaxy web: open {url}  ({mode}; Ctrl+C stops)", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(f"galaxy web: warning: listening on {host}, not only this machine (plain http)",
                  file=sys.stderr, flush=True)

    try:
        return serve(options, announce)
    except OSError as exc:
        print(f"galaxy web: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
