"""`hermit` / `hermit tui [--no-server]` and `hermit demo`: the full-screen app (Textual loaded here only)."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from pathlib import Path

from hermit.cli import Failed, UsageError
from hermit.cli.common import settings_from


def _log_to_file(env) -> Path | None:
    """hypercorn and friends must not write to the terminal the TUI owns: log to a file instead."""
    from hermit.services.secrets import config_dir

    root = logging.getLogger()
    root.handlers[:] = []
    try:
        folder = config_dir(env)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "tui.log"
        handler: logging.Handler = logging.FileHandler(path)
    except OSError:
        path, handler = None, logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    return path


def _port(args, settings) -> tuple[str, int]:
    host = getattr(args, "host", None) or settings.host
    port = settings.port if getattr(args, "port", None) is None else args.port
    if not 0 <= port <= 65535:
        raise UsageError(f"hermit: --port must be between 0 and 65535, got {port}")
    return host, port


def tui(args) -> int:
    settings = settings_from(args)
    _log_to_file(settings.env or {})
    services, server, problem = prepare(args, settings)
    return _run(services, server, settings, problem=problem)


def prepare(args, settings):
    """Open the database and bind the port now, so a problem is known before the app starts.

    Returns (services or None, ProxyServer or None, problem or None); a problem is a
    (title, plain-words message) pair the app shows with an offer to watch only.
    """
    from hermit.services import tui_support

    host, port = _port(args, settings)
    watch_only = bool(getattr(args, "no_server", False))
    services = server = problem = None
    try:
        services = tui_support.open_services(settings, watch_only=watch_only)
    except Exception as exc:  # noqa: BLE001 - shown in the app, in plain words
        problem = ("Hermit cannot open the database",
                   f"{tui_support.describe_open_error(exc)}\n\nWatch only tries to open it read-only, "
                   "without the proxy.")
    if services is not None and not watch_only:
        from hermit.cli.serve import is_loopback
        from hermit.proxy.server import ProxyServer, ServerError

        if not is_loopback(host) and not settings.admin_token:
            problem = ("Hermit will not listen on the network without an admin token",
                       f"Listening on {host} would open the management routes to the network. Set "
                       "HERMIT_ADMIN_TOKEN, or use --host 127.0.0.1. You can watch the database meanwhile.")
        else:
            server = ProxyServer(services, host, port)
            try:
                server.bind()
            except ServerError as exc:
                server.db_executor.shutdown(wait=False)
                problem = ("Hermit cannot start the proxy",
                           f"{exc}.\n\nAnother Hermit may already be serving there: watch its database "
                           "instead, or quit and start with --port N.")
                server = None
    return services, server, problem


def _run(services, server, settings, **kw) -> int:
    from hermit.tui.app import HermitApp

    app = HermitApp(services, server, settings=settings, **kw)
    try:
        app.run()
    finally:
        services = app.services  # watch-only may have opened them inside the app
        if services is not None:
            services.close()
    if app.return_code not in (None, 0):
        raise Failed("the TUI stopped with an error")
    if server is not None and server.state == "stopped":
        print("hermit stopped; ledger drained", file=sys.stderr, flush=True)
    return 0


def demo(args) -> int:
    from hermit.proxy.server import ServerError
    from hermit.tui.demo import build_demo, demo_settings

    folder = Path(tempfile.mkdtemp(prefix="hermit-demo-"))
    upstream = services = None
    try:
        _log_to_file(demo_settings(folder).env or {})
        host = getattr(args, "host", None) or "127.0.0.1"
        port = getattr(args, "port", None) or 0  # a free port: a real Hermit may own 8800
        try:
            services, server, settings, upstream, traffic = build_demo(folder, host, port)
        except ServerError as exc:
            raise Failed(str(exc)) from None
        opened, services = services, None  # _run closes them
        _run(opened, server, settings, traffic=traffic.run)
    finally:
        if services is not None:
            services.close()
        if upstream is not None:
            upstream.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0
