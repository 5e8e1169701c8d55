"""GitHub for github-copilot: the OAuth device flow and the Copilot token exchange.

HERMIT_GITHUB_URL (default https://github.com) serves the device flow, HERMIT_GITHUB_API_URL
(default https://api.github.com) the token exchange; tests point both at a fake on loopback.
Nothing here ever puts a token in a message.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import httpx

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPE = "read:user"
DEFAULT_INTERVAL = 5.0
DEFAULT_EXPIRES_IN = 900.0
SLOW_DOWN_SECONDS = 5.0
EDITOR_VERSION = "vscode/1.99.3"
EDITOR_PLUGIN_VERSION = "copilot-chat/0.26.7"
INTEGRATION_ID = "vscode-chat"
COPILOT_USER_AGENT = "GitHubCopilotChat/0.26.7"
REFRESH_MARGIN_SECONDS = 60.0


class GitHubError(RuntimeError):
    """GitHub refused or failed; `kind` is a short code (expired_token, access_denied, ...)."""

    def __init__(self, message: str, kind: str = "github_error", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    expires_in: float
    interval: float

    def to_json(self) -> dict[str, Any]:
        return {
            "device_code": self.device_code,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "expires_in": _int_if_whole(self.expires_in),
            "interval": _int_if_whole(self.interval),
        }


@dataclass(frozen=True)
class CopilotToken:
    token: str
    expires_at: float  # unix seconds
    refresh_in: float | None
    api_base: str | None  # endpoints.api
    obtained_at: float  # unix seconds

    @property
    def refresh_at(self) -> float:
        """When to exchange again: refresh_in - 60 s after it was issued, and never past expires_at - 60 s."""
        limit = self.expires_at - REFRESH_MARGIN_SECONDS
        if self.refresh_in:
            return min(self.obtained_at + self.refresh_in - REFRESH_MARGIN_SECONDS, limit)
        return limit

    def fresh(self, now: float) -> bool:
        return now < self.refresh_at


def _int_if_whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number >= 0 else default


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise GitHubError(
            f"GitHub answered HTTP {response.status_code} with something that is not JSON "
            f"({response.request.url.host}); is HERMIT_GITHUB_URL / HERMIT_GITHUB_API_URL right?",
            "bad_response", response.status_code,
        )
    return data


async def _post_form(client: httpx.AsyncClient, url: str, form: dict[str, str], timeout: float) -> httpx.Response:
    try:
        return await client.post(url, data=form, headers={"accept": "application/json"}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise GitHubError(f"cannot reach GitHub at {url}: {exc or type(exc).__name__}", "unreachable") from None


async def start_device_flow(
    client: httpx.AsyncClient, github_url: str, client_id: str, scope: str = DEFAULT_SCOPE, timeout: float = 15.0
) -> DeviceCode:
    """Step 1: ask GitHub for a device code and the user code to show."""
    response = await _post_form(
        client, github_url.rstrip("/") + "/login/device/code", {"client_id": client_id, "scope": scope}, timeout
    )
    data = _json(response)
    if response.status_code >= 400 or data.get("error") or not data.get("device_code"):
        error = data.get("error") or f"http_{response.status_code}"
        detail = data.get("error_description") or error
        raise GitHubError(f"GitHub refused to start the device flow: {detail} (client id {client_id})", str(error),
                          response.status_code)
    return DeviceCode(
        device_code=str(data["device_code"]),
        user_code=str(data.get("user_code") or ""),
        verification_uri=str(data.get("verification_uri") or github_url.rstrip("/") + "/login/device"),
        expires_in=_number(data.get("expires_in"), DEFAULT_EXPIRES_IN),
        interval=_number(data.get("interval"), DEFAULT_INTERVAL),
    )


_STOP_MESSAGES = {
    "expired_token": "the device code expired before it was authorised; start the login again",
    "token_expired": "the device code expired before it was authorised; start the login again",
    "access_denied": "the authorisation was denied (cancelled on GitHub)",
    "unsupported_grant_type": "GitHub does not accept this grant type",
    "incorrect_client_credentials": "GitHub does not know this OAuth client id",
    "incorrect_device_code": "GitHub does not know this device code",
    "device_flow_disabled": "device flow is not enabled for this OAuth app",
}


async def poll_device_flow(
    client: httpx.AsyncClient,
    github_url: str,
    client_id: str,
    device_code: str,
    *,
    interval: float = DEFAULT_INTERVAL,
    expires_in: float = DEFAULT_EXPIRES_IN,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = 15.0,
) -> str:
    """Step 2: poll until the user authorises; returns the GitHub access token.

    Polls no faster than `interval`, adds time on slow_down (GitHub's new interval when it sends
    one, else 5 s more), and stops on expiry, denial or any other final error.
    """
    url = github_url.rstrip("/") + "/login/oauth/access_token"
    form = {"client_id": client_id, "device_code": device_code, "grant_type": GRANT_TYPE}
    deadline = clock() + expires_in
    while True:
        await sleep(interval)
        if clock() > deadline:
            raise GitHubError(_STOP_MESSAGES["expired_token"], "expired_token")
        response = await _post_form(client, url, form, timeout)
        data = _json(response)  # pending states come back as HTTP 200 with an `error`
        token = data.get("access_token")
        if token:
            return str(token)
        error = str(data.get("error") or f"http_{response.status_code}")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = _number(data.get("interval"), interval + SLOW_DOWN_SECONDS)
            continue
        message = _STOP_MESSAGES.get(error) or data.get("error_description") or error
        raise GitHubError(f"GitHub login stopped: {message}", error, response.status_code)


async def exchange_copilot_token(
    client: httpx.AsyncClient, api_url: str, github_token: str, timeout: float = 15.0
) -> CopilotToken:
    """GET /copilot_internal/v2/token with the GitHub token; returns the short-lived Copilot token."""
    url = api_url.rstrip("/") + "/copilot_internal/v2/token"
    headers = {
        "authorization": f"token {github_token}",
        "accept": "application/json",
        "editor-version": EDITOR_VERSION,
        "editor-plugin-version": EDITOR_PLUGIN_VERSION,
        "user-agent": COPILOT_USER_AGENT,
    }
    try:
        response = await client.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise GitHubError(f"cannot reach GitHub at {url} for the Copilot token: {exc or type(exc).__name__}",
                          "unreachable") from None
    if response.status_code >= 400:
        try:
            detail = str(response.json().get("message") or "")
        except (ValueError, AttributeError):
            detail = ""
        detail = detail or response.reason_phrase or "no details"
        if response.status_code in (401, 403):
            why = "the GitHub token was rejected (personal access tokens are not accepted; log in with the device flow)"
        elif response.status_code == 404:
            why = "this GitHub account has no Copilot access"
        else:
            why = "GitHub could not issue a Copilot token"
        raise GitHubError(f"{why}: HTTP {response.status_code} {detail}", "exchange_failed", response.status_code)
    data = _json(response)
    token = data.get("token")
    if not token:
        raise GitHubError("GitHub answered the Copilot token exchange without a token", "bad_response")
    now = time.time()
    endpoints = data.get("endpoints") if isinstance(data.get("endpoints"), dict) else {}
    api_base = endpoints.get("api") if isinstance(endpoints.get("api"), str) and endpoints.get("api") else None
    refresh_in = _number(data.get("refresh_in"), 0.0) or None
    return CopilotToken(
        token=str(token),
        expires_at=_number(data.get("expires_at"), now + 1500.0),
        refresh_in=refresh_in,
        api_base=api_base.rstrip("/") if api_base else None,
        obtained_at=now,
    )


def copilot_headers(copilot_token: str, body: dict | None = None) -> dict[str, str]:
    """The headers the Copilot API expects on every request."""
    initiator = "user"
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") in ("assistant", "tool") for m in messages
    ):
        initiator = "agent"
    return {
        "authorization": f"Bearer {copilot_token}",
        "editor-version": EDITOR_VERSION,
        "editor-plugin-version": EDITOR_PLUGIN_VERSION,
        "copilot-integration-id": INTEGRATION_ID,
        "user-agent": COPILOT_USER_AGENT,
        "openai-intent": "conversation-panel",
        "x-initiator": initiator,
    }
