"""The quick test: a one-token, non-streaming chat against a target, judged by its HTTP status."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any

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

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status_code": self.status_code,
            "latency_ms": round(self.latency_ms, 1),
            "message": self.message,
            "model": self.model,
        }


def probe_timeout() -> float:
    try:
        return max(0.5, float(os.environ.get("HERMIT_PROBE_TIMEOUT_SECONDS", "") or DEFAULT_PROBE_TIMEOUT))
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


def _connect_reason(exc: BaseException) -> str:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(e) for e in chain).lower()
    for e in chain:
        if isinstance(e, ssl.SSLError) or "ssl" in type(e).__name__.lower() or "certificate" in str(e).lower():
            return f"TLS error: {e}"
        if isinstance(e, OSError) and e.errno == errno.ECONNREFUSED:
            return "connection refused (nothing is listening at that address)"
    if "refused" in text:
        return "connection refused (nothing is listening at that address)"
    if any(s in text for s in ("name or service not known", "nodename nor servname", "getaddrinfo", "name resolution", "no address associated")):
        return "DNS failure: the host name could not be resolved"
    if "ssl" in text or "certificate" in text or "tls" in text:
        return f"TLS error: {chain[-1]}"
    return f"connection failed: {chain[-1] or type(chain[-1]).__name__}"


def _classify(status: int, payload: Any, text: str, url: str) -> str:
    detail = error_text_of(payload) or text[:200].strip() or "no details"
    if status in (401, 403):
        return f"the upstream rejected the API key (HTTP {status}): {detail}"
    if status == 404:
        return f"model or path not found (HTTP 404) at {url}: {detail}"
    if status == 429:
        return f"rate limited or out of credit (HTTP 429): {detail}"
    return f"upstream answered HTTP {status}: {detail}"


async def probe(target: Target, auth: UpstreamAuth, client: httpx.AsyncClient, timeout: float | None = None) -> tuple[ProbeResult, LedgerEntry]:
    """Run one quick test; returns the result and the ledger entry that records it."""
    timeout = timeout or probe_timeout()
    started = time.perf_counter()
    created = now_ms()
    status: int | None = None
    usage = None
    try:
        base_url, headers = await auth.resolve(target)
        url = base_url.rstrip("/") + target.provider.chat_path
        body = json.dumps(probe_body(target)).encode()
        response = await asyncio.wait_for(client.post(url, content=body, headers=headers, timeout=timeout), timeout + 1)
        status = response.status_code
        text = response.text
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if status >= 400:
            message, ok = _classify(status, payload, text, url), False
        elif not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
            message, ok = f"not OpenAI-compatible: {url} answered {status} with {text[:120]!r}", False
        elif payload.get("error"):
            message, ok = f"upstream error: {error_text_of(payload)}", False
        else:
            message, ok = "ok", True
            usage = body_usage(payload, probe_body(target))
    except (httpx.TimeoutException, asyncio.TimeoutError):
        message, ok = f"timed out after {timeout:g} s waiting for the upstream", False
    except (httpx.ConnectError, httpx.NetworkError, OSError) as exc:
        message, ok = _connect_reason(exc), False
    except httpx.UnsupportedProtocol as exc:
        message, ok = f"bad base URL: {exc}", False
    except httpx.HTTPError as exc:
        message, ok = f"not OpenAI-compatible: {exc}", False
    except Exception as exc:  # noqa: BLE001 - auth hooks and the like: report, never crash
        message, ok = str(exc) or type(exc).__name__, False
    latency = (time.perf_counter() - started) * 1000
    result = ProbeResult(ok, status, latency, message, target.model)
    entry = LedgerEntry(
        request_id=uuid.uuid4().hex,
        created_at=created,
        provider=target.provider.name,
        upstream_model=target.model,
        endpoint="chat",
        stream=False,
        status_code=status or (504 if "timed out" in message else 502),
        profile_id=target.profile_id or None,
        profile_name=target.profile_name,
        client_model=target.model,
        latency_ms=round(latency, 3),
        usage_source=USAGE_NONE,
        client=QUICK_TEST_CLIENT,
        error=None if ok else message,
    )
    if usage is not None:
        entry.prompt_tokens = usage.prompt_tokens or 0
        entry.completion_tokens = usage.completion_tokens or 0
        entry.total_tokens = usage.total_tokens or 0
        entry.usage_source = usage.source
    return result, entry


def run_probe(services, target: Target) -> ProbeResult:
    """Synchronous quick test for the CLI; the ledger row is written before returning."""
    from hermit.store import repos

    async def main() -> tuple[ProbeResult, LedgerEntry]:
        async with httpx.AsyncClient(trust_env=False) as client:
            auth = services.make_auth(client)
            return await probe(target, auth, client)

    result, entry = asyncio.run(main())
    entry.cost_usd = services.price(entry)
    repos.insert_ledger([entry])
    return result
