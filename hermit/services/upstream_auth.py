"""Where a request for a target goes and with which headers (keys, provider headers, Copilot tokens)."""

from __future__ import annotations

from typing import Awaitable, Callable

import httpx

from hermit import __version__
from hermit.services.profiles import Target

HOP_HEADER = "x-hermit-hop"


class AuthError(RuntimeError):
    """Credentials for a target are missing or were refused; the message says which."""


def base_headers(target: Target) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json", HOP_HEADER: "1"}
    headers.update(target.provider.headers)
    headers["user-agent"] = f"hermit/{__version__}"
    if target.api_key:
        headers["authorization"] = f"Bearer {target.api_key}"
    return headers


class UpstreamAuth:
    """Resolves (base_url, headers) per target; providers with token exchanges plug in here."""

    def __init__(self, services, client: httpx.AsyncClient) -> None:
        self.services = services
        self.client = client
        self.hooks: dict[str, Callable[[Target], Awaitable[tuple[str, dict[str, str]]]]] = {}

    async def resolve(self, target: Target) -> tuple[str, dict[str, str]]:
        hook = self.hooks.get(target.provider.name)
        if hook is not None:
            return await hook(target)
        return target.base_url, base_headers(target)

    async def refused(self, target: Target) -> bool:
        """Called after a 401; True when fresh credentials were obtained and a retry is worth it."""
        return False
