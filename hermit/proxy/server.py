"""ProxyServer: the Quart app under hypercorn, with its upstream pool, ledger writer and watchers."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config

from hermit.proxy.app import create_app
from hermit.proxy.asgi import HermitASGI
from hermit.proxy.forward import Forwarder
from hermit.services.active import ActiveTarget

log = logging.getLogger("hermit.server")


def make_upstream_pool(kind: str | None = None) -> httpx.AsyncBaseTransport:
    """The one pooled transport for every upstream.

    httpx stays the API; its transport is chosen by measurement (bench/bench_proxy.py
    --transport both): over aiohttp it took ~5x less CPU per request than httpcore's pool at
    concurrency 64. HERMIT_HTTP_TRANSPORT=httpx selects httpx's own transport.
    """
    kind = (kind or os.environ.get("HERMIT_HTTP_TRANSPORT") or "aiohttp").lower()
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=256, keepalive_expiry=30)
    if kind == "aiohttp":
        from hermit.proxy.pool import AiohttpPool

        return AiohttpPool(limits=limits)
    return httpx.AsyncHTTPTransport(limits=limits)


def make_upstream_client(
    timeout: float, transport: str | None = None, pool: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An httpx client over the pool (for quick tests, model lists and token exchanges)."""
    timeouts = httpx.Timeout(timeout, connect=min(timeout, 15.0))
    return httpx.AsyncClient(transport=pool or make_upstream_pool(transport), timeout=timeouts, trust_env=False)


class ProxyServer:
    """Runs the proxy on HOST:PORT inside the caller's event loop until stop() is called."""

    def __init__(self, services, host: str, port: int) -> None:
        self.services = services
        self.host = host
        self.port = port
        self.db_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hermit-db")
        pool = make_upstream_pool()
        self.client = make_upstream_client(services.settings.request_timeout, pool=pool)
        self.forwarder = Forwarder(services, self.client, pool, listen=(host, port))
        self.active = ActiveTarget(services.profiles, self.db_executor, self._set_target)
        self.app = create_app(services, self.forwarder)
        self.app.extensions["hermit.executor"] = self.db_executor
        self.app.extensions["hermit.active"] = self.active  # management routes refresh it after a switch
        self._stop = asyncio.Event()
        self.started = asyncio.Event()
        self.state = "stopped"
        self._socket: socket.socket | None = None

    def _set_target(self, target) -> None:
        self.forwarder.target = target

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def bind(self) -> None:
        """Open the listening socket now, so a taken port is reported before anything starts."""
        if self._socket is not None:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            reason = "the port is already in use" if exc.errno in (errno.EADDRINUSE,) else exc.strerror or str(exc)
            raise ServerError(f"cannot listen on {self.host}:{self.port}: {reason}") from None
        sock.listen(1024)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.forwarder.listen = (self.host, self.port)
        self._socket = sock

    def config(self) -> Config:
        config = Config()
        # hypercorn adopts (and later closes) the descriptor it is given: hand it a duplicate.
        config.bind = [f"fd://{os.dup(self._socket.fileno())}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("hermit.hypercorn")
        config.graceful_timeout = 5.0
        config.keep_alive_timeout = 75.0
        return config

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Serve until request_stop(); then drain in-flight requests and the ledger."""
        self.bind()
        self.services.start_writer()
        self.state = "starting"
        await self.active.refresh()
        self.active.start()

        async def _shutdown_trigger() -> None:
            await self._stop.wait()
            self.state = "stopping"

        @self.app.after_serving
        async def _after() -> None:
            self.state = "stopping"

        @self.app.before_serving
        async def _before() -> None:
            self.state = "running"
            self.started.set()

        try:
            asgi = HermitASGI(self.app, self.forwarder, self.services.settings.max_body_bytes)
            await serve(asgi, self.config(), shutdown_trigger=_shutdown_trigger, mode="asgi")
        finally:
            self.state = "stopping"
            await self.active.stop()
            await self.client.aclose()
            loop = asyncio.get_running_loop()
            if self.services.writer is not None:
                await loop.run_in_executor(None, self.services.writer.flush, 30.0)
            self.db_executor.shutdown(wait=False)
            if self._socket is not None:
                self._socket.close()
                self._socket = None
            self.state = "stopped"


class ServerError(RuntimeError):
    """The server cannot start; the message says why in plain words."""
