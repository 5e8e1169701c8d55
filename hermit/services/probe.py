"""The quick test: a one-token, non-streaming chat against a target, judged by its HTTP status."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

import httpx

from hermit.core import providers as prov
from hermit.core.models import LedgerEntry, now_ms
from hermit.core.usage import USAGE_NONE, body_usage, error_text_of
from hermit.services.profiles import Target
from hermit.services.upstream_auth import UpstreamAuth

QUICK_TEST_CLIENT = "hermit-quick-test"
DEFAULT_PROBE_TIMEOUT = 10.0


@dataclass
class ProbeResult:
    ok: bool
    status_code: int | None
    latency_ms: float
    message: str
    model: str
    reason: str = "ok"  # ok, connection_refused, dns_failure, tls_error, key_rejected, not_found, timeout,
    # not_openai_compatible, bad_base_url, connection_failed, rate_limited, upstream_error, auth_error

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status_code": self.status_code,
            "latency_ms": round(self.latency_ms, 1),
            "message": self.message,
            "model": self.model,
        }


def probe_timeout(env: Mapping[str, str] | None = None) -> float:
    """The quick test's own timeout: HERMIT_PROBE_TIMEOUT_SECONDS (default 10 s), short on purpose."""
    env = os.environ if env is None else env
    try:
        return max(0.2, float(env.get("HERMIT_PROBE_TIMEOUT_SECONDS", "") or DEFAULT_PROBE_TIMEOUT))
    except ValueError:
        return DEFAULT_PROBE_TIMEOUT


def probe_body(target: Target) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": target.model,
        "messages": [{"role": "user", "content": "ping"}],
        "stream": False,
        prov.limit_field_for(target.provider, target.model): 1,
    }
    if target.provider.name == "alibaba-qwen":
        body["enable_thinking"] = False
    return body


_REFUSED = "connection refused (nothing is listening at that address)"
_DNS = "DNS failure: the host name could not be resolved"
_DNS_TEXT = ("name or service not known", "nodename nor servname", "getaddrinfo", "name resolution",
             "no address associated", "temporary failure in name resolution")


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10 and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_tls(e: BaseException) -> bool:
    if isinstance(e, (ssl.SSLWantReadError, ssl.SSLWantWriteError)):
        return False  # a handshake that was still waiting: a timeout, not a TLS error
    name = type(e).__name__.lower()
    return isinstance(e, ssl.SSLError) or "ssl" in name or "certificate" in name or "certificate verify" in str(e).lower()


def classify_exception(exc: BaseException, timeout: float) -> tuple[str, str]:
    """(reason, plain message) for a failure to get an answer at all.

    The cause chain is read: the exception that names the reason (DNS, refused, TLS) is often
    wrapped by the httpx one (see hermit.proxy.pool).
    """
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, socket.gaierror) or "dnserror" in type(e).__name__.lower():
            return "dns_failure", _DNS
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return "connection_refused", _REFUSED
    for e in chain:
        if _is_tls(e):
            detail = str(e).strip() or type(e).__name__
            return "tls_error", f"TLS error: {detail[:200]}"
    text = " ".join(str(e) for e in chain).lower()
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "bad_base_url", f"bad base URL: {exc}"
    if any(isinstance(e, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError)) for e in chain):
        return "timeout", f"timed out after {timeout:g} s waiting for the upstream"
    if "refused" in text:
        return "connection_refused", _REFUSED
    if any(s in text for s in _DNS_TEXT):
        return "dns_failure", _DNS
    if "wrong version number" in text or "ssl" in text or "certificate" in text:
        return "tls_error", f"TLS error: {chain[-1]}"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.DecodingError)):
        return "not_openai_compatible", f"not OpenAI-compatible: the server broke the HTTP exchange ({exc})"
    last = chain[-1]
    return "connection_failed", f"connection failed: {str(last).strip() or type(last).__name__}"


def _classify(status: int, payload: Any, text: str, url: str) -> tuple[str, str]:
    detail = error_text_of(payload) or text[:200].strip() or "no details"
    if status in (401, 403):
        return "key_rejected", f"the upstream rejected the API key (HTTP {status}): {detail}"
    if status == 404:
        return "not_found", f"model or path not found (HTTP 404) at {url}: {detail}"
    if status == 429:
        return "rate_limited", f"rate limited or out of credit (HTTP 429): {detail}"
    return "upstream_error", f"upstream answered HTTP {status}: {detail}"


async def _send_once(target: Target, auth: UpstreamAuth, client: httpx.AsyncClient, timeout: float):
    body = probe_body(target)
    base_url, headers = await auth.resolve(target, body)
    url = base_url.rstrip("/") + target.provider.chat_path
    payload = json.dumps(body).encode()
    response = await asyncio.wait_for(client.post(url, content=payload, headers=headers, timeout=timeout), timeout + 1)
    return url, headers, response


async def probe(target: Target, auth: UpstreamAuth, client: httpx.AsyncClient, timeout: float | None = None) -> tuple[ProbeResult, LedgerEntry]:
    """Run one quick test; returns the result and the ledger entry that records it (client hermit-quick-test)."""
    from hermit.services.upstream_auth import AuthError

    timeout = timeout or probe_timeout()
    started = time.perf_counter()
    created = now_ms()
    status: int | None = None
    usage = None
    reason = "ok"
    try:
        url, headers, response = await _send_once(target, auth, client, timeout)
        if response.status_code == 401 and await auth.refused(target, headers):
            url, headers, response = await _send_once(target, auth, client, timeout)
        status = response.status_code
        text = response.text
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if status >= 400:
            reason, message = _classify(status, payload, text, url)
        elif not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
            reason, message = "not_openai_compatible", f"not OpenAI-compatible: {url} answered {status} with {text[:120]!r}"
        elif payload.get("error"):
            reason, message = "upstream_error", f"upstream error: {error_text_of(payload)}"
        else:
            message = "ok"
            usage = body_usage(payload, probe_body(target))
    except AuthError as exc:
        reason, message = "auth_error", str(exc)
    except httpx.UnsupportedProtocol as exc:
        reason, message = "bad_base_url", f"bad base URL: {exc}"
    except (httpx.HTTPError, OSError, asyncio.TimeoutError) as exc:
        reason, message = classify_exception(exc, timeout)
    except Exception as exc:  # noqa: BLE001 - auth hooks and the like: report, never crash
        reason, message = "upstream_error", str(exc) or type(exc).__name__
    ok = reason == "ok"
    if target.api_key and len(target.api_key) >= 8 and target.api_key in message:
        from hermit.core.models import hint

        message = message.replace(target.api_key, hint(target.api_key) or "…")  # an upstream that echoes the key
    latency = (time.perf_counter() - started) * 1000
    result = ProbeResult(ok, status, latency, message, target.model, reason)
    entry = LedgerEntry(
        request_id=uuid.uuid4().hex,
        created_at=created,
        provider=target.provider.name,
        upstream_model=target.model,
        endpoint="chat",
        stream=False,
        status_code=status or (504 if reason == "timeout" else 502),
        profile_id=target.profile_id or None,
        profile_name=target.profile_name,
        client_model=target.model,
        latency_ms=round(latency, 3),
        usage_source=USAGE_NONE,
        client=QUICK_TEST_CLIENT,
        error=None if ok else message[:2000],
    )
    if usage is not None:
        entry.prompt_tokens = usage.prompt_tokens or 0
        entry.completion_tokens = usage.completion_tokens or 0
        entry.total_tokens = usage.total_tokens or 0
        entry.cached_tokens = usage.cached_tokens
        entry.reasoning_tokens = usage.reasoning_tokens
        entry.usage_source = usage.source
    return result, entry


async def probe_in_server(forwarder, target: Target, timeout: float | None = None) -> ProbeResult:
    """The quick test inside a running server: its shared client and auth; the row goes through the writer."""
    timeout = timeout or probe_timeout(forwarder.services.settings.env)
    result, entry = await probe(target, forwarder.auth, forwarder.client, timeout)
    pricer = getattr(forwarder, "pricer", None)
    try:
        entry.cost_usd = pricer(entry) if pricer is not None else None
    except Exception:  # noqa: BLE001 - an unknown price stays null
        entry.cost_usd = None
    writer = forwarder.services.writer
    if writer is not None:
        writer.submit(entry)
    else:
        from hermit.store import repos

        await asyncio.to_thread(repos.insert_ledger, [entry])
    bus = forwarder.services.bus
    if bus.active:
        from hermit.services.events import RequestFinished

        bus.publish(RequestFinished(entry))
    return result


def run_probe(services, target: Target) -> ProbeResult:
    """Synchronous quick test for the CLI; the ledger row is written before returning."""
    from hermit.store import repos

    async def main() -> tuple[ProbeResult, LedgerEntry]:
        async with httpx.AsyncClient(trust_env=False) as client:
            auth = services.make_auth(client)
            return await probe(target, auth, client, probe_timeout(services.settings.env))

    result, entry = asyncio.run(main())
    try:
        entry.cost_usd = services.price(entry)
    except Exception:  # noqa: BLE001 - an unknown price stays null
        entry.cost_usd = None
    repos.insert_ledger([entry])
    return result
