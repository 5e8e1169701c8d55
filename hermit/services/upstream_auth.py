"""Where a request for a target goes and with which headers (keys, provider headers, Copilot tokens)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Mapping

import httpx

from hermit import __version__
from hermit.services.profiles import Target
from hermit.services.secrets import LockedSecret

HOP_HEADER = "x-hermit-hop"
log = logging.getLogger("hermit.auth")


class AuthError(RuntimeError):
    """Credentials for a target are missing or were refused; the message says which."""


def base_headers(target: Target) -> dict[str, str]:
    if isinstance(target.api_key, LockedSecret):
        raise AuthError(f"profile {target.profile_name!r}: {target.api_key.error}")
    headers = {"content-type": "application/json", "accept": "application/json", HOP_HEADER: "1"}
    headers.update(target.provider.headers)
    headers["user-agent"] = f"hermit/{__version__}"
    if target.api_key:
        headers["authorization"] = f"Bearer {target.api_key}"
    return headers


Hook = Callable[[Target, "dict | None"], Awaitable[tuple[str, dict[str, str]]]]


class UpstreamAuth:
    """Resolves (base_url, headers) per target; providers with token exchanges plug in here.

    github-copilot: the profile's GitHub token (its auth profile's, else its api_key) is exchanged
    for a Copilot token at request time; the Copilot token is cached per GitHub token until shortly
    before it expires, and exchanged again once when the Copilot API answers 401.
    """

    def __init__(self, services, client: httpx.AsyncClient, clock: Callable[[], float] = time.time) -> None:
        self.services = services
        self.client = client
        self.clock = clock
        self.hooks: dict[str, Hook] = {"github-copilot": self._copilot}
        self.exchanges = 0  # Copilot token exchanges made (for tests and the TUI)
        self._github_tokens: dict[Any, str] = {}  # target identity -> GitHub token
        self._copilot_tokens: dict[str, Any] = {}  # GitHub token -> CopilotToken
        self._locks: dict[Any, asyncio.Lock] = {}
        self._static: tuple[Target, str, dict[str, str]] | None = None  # headers of the last plain target

    async def resolve(self, target: Target, body: dict | None = None) -> tuple[str, dict[str, str]]:
        hook = self.hooks.get(target.provider.name)
        if hook is not None:
            return await hook(target, body)
        cached = self._static
        if cached is None or cached[0] is not target:  # targets are immutable: one build per switch
            cached = self._static = (target, target.base_url, base_headers(target))
        return cached[1], cached[2]

    async def refused(self, target: Target, headers: Mapping[str, str] | None = None) -> bool:
        """Called after a 401; True when fresh credentials were obtained and a retry is worth it."""
        if target.provider.name != "github-copilot":
            return False
        key = self._identity(target)
        gh = self._github_tokens.get(key)
        cached = self._copilot_tokens.get(gh) if gh else None
        used = (headers or {}).get("authorization", "")
        if cached is not None and (not used or used == f"Bearer {cached.token}"):
            self._copilot_tokens.pop(gh, None)
        self._github_tokens.pop(key, None)  # read the GitHub token again too (it may have been replaced)
        try:
            await self._copilot_token(target)
        except AuthError as exc:
            log.warning("Copilot token refresh after a 401 failed: %s", exc)
            return False
        return True

    # -- github-copilot -------------------------------------------------------------------

    @staticmethod
    def _identity(target: Target) -> Any:
        return ("auth", target.auth_profile_id) if target.auth_profile_id else ("key", target.api_key)

    async def _github_token(self, target: Target) -> str:
        if target.auth_profile_id:
            from hermit.services.secrets import SecretKeyError
            from hermit.store.repos import NotFound

            try:
                return await asyncio.to_thread(self.services.auth_profiles.token, target.auth_profile_id)
            except (NotFound, SecretKeyError) as exc:
                raise AuthError(f"github-copilot profile {target.profile_name!r}: {exc}") from None
        if isinstance(target.api_key, LockedSecret):
            raise AuthError(f"profile {target.profile_name!r}: {target.api_key.error}")
        if target.api_key:
            return target.api_key
        raise AuthError(
            f"github-copilot profile {target.profile_name!r} has no GitHub token: run "
            "`hermit auth login-github-copilot --name NAME --device` and give the profile --auth-profile-id"
        )

    async def _copilot_token(self, target: Target):
        from hermit.services.github import GitHubError, exchange_copilot_token

        key = self._identity(target)
        gh = self._github_tokens.get(key)
        cached = self._copilot_tokens.get(gh) if gh else None
        if cached is not None and cached.fresh(self.clock()):
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            gh = self._github_tokens.get(key)
            cached = self._copilot_tokens.get(gh) if gh else None
            if cached is not None and cached.fresh(self.clock()):
                return cached
            gh = await self._github_token(target)
            cached = self._copilot_tokens.get(gh)
            if cached is None or not cached.fresh(self.clock()):
                try:
                    cached = await exchange_copilot_token(self.client, self.services.settings.github_api_url, gh)
                except GitHubError as exc:
                    raise AuthError(f"github-copilot profile {target.profile_name!r}: {exc}") from None
                self.exchanges += 1
                self._copilot_tokens[gh] = cached
            self._github_tokens[key] = gh
            return cached

    async def _copilot(self, target: Target, body: dict | None) -> tuple[str, dict[str, str]]:
        from hermit.services.github import copilot_headers

        token = await self._copilot_token(target)
        base_url = target.base_url
        # endpoints.api from the token wins over the built-in default, not over a base URL the operator set.
        if token.api_base and base_url.rstrip("/") == target.provider.base_url.rstrip("/"):
            base_url = token.api_base
        headers = {"content-type": "application/json", "accept": "application/json", HOP_HEADER: "1"}
        headers.update(copilot_headers(token.token, body))
        return base_url, headers
