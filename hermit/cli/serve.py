"""`hermit --headless serve`: the proxy alone, on hypercorn, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import sys

from hermit.cli import Failed, UsageError
from hermit.cli.common import services_from

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("hermit.hypercorn").setLevel(max(logging.WARNING, root.level))
    for noisy in ("httpx", "httpcore", "aiohttp", "asyncio", "peewee", "quart.app"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def run(args) -> int:
    from hermit.proxy.server import ProxyServer, ServerError
    from hermit.services.config import ConfigService

    services = services_from(args)
    settings = services.settings
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise UsageError(f"hermit serve: --port must be between 0 and 65535, got {port}")
    if not is_loopback(host) and not settings.admin_token:
        raise Failed(
            f"refusing to listen on {host} without an admin token: management routes would be open to the "
            "network. Set HERMIT_ADMIN_TOKEN=<a long random string> (clients then send "
            "`Authorization: Bearer <token>` to /profiles, /analytics, ...) or listen on 127.0.0.1"
        )
    if getattr(args, "reload", False):
        print("hermit: --reload is not needed (profiles and the log level change without a restart); ignoring it",
              file=sys.stderr)
    config = ConfigService()
    level = args.log_level or config.log_level()
    configure_logging(level)
    server = ProxyServer(services, host, port)
    try:
        server.bind()
    except ServerError as exc:
        raise Failed(str(exc)) from None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.request_stop)
        if args.log_level is None:
            config.watch(loop, server.db_executor)
        task = loop.create_task(server.run())
        await server.started.wait()
        target = server.forwarder.target
        active = f"{target.profile_name} ({target.provider.name}, {target.model})" if target else "none"
        print(f"hermit listening on {server.url} (active profile: {active}; log level {level})", file=sys.stderr, flush=True)
        await task

    try:
        asyncio.run(main())
    finally:
        services.close()
    print("hermit stopped; ledger drained", file=sys.stderr, flush=True)
    return 0
