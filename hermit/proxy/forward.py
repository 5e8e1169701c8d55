"""The proxy path: turn a client request into an upstream request, relay the answer, account for it."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Mapping
from urllib.parse import urlparse

import httpx

from hermit.core import providers as prov
from hermit.core.models import LedgerEntry, hint, now_ms
from hermit.core.usage import (
    USAGE_NONE,
    SSEParser,
    StreamAccountant,
    Usage,
    body_usage,
    error_text_of,
)
from hermit.proxy.clients import client_name
from hermit.services.events import RequestFinished, RequestProgress, RequestStarted
from hermit.services.profiles import Target
from hermit.services.upstream_auth import HOP_HEADER, AuthError

log = logging.getLogger("hermit.access")
PASS_HEADERS = ("retry-after", "x-request-id", "openai-processing-ms")
PASS_PREFIXES = ("x-ratelimit-",)


@dataclass
class Reply:
    """What the HTTP layer sends back: a status, headers and a body or a byte stream."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


JSON_HEADERS = [("content-type", "application/json")]


class ProxyError(Exception):
    """A failure Hermit answers itself, in OpenAI's error shape."""

    def __init__(self, status: int, message: str, type_: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    def reply(self) -> Reply:
        return Reply(self.status, list(JSON_HEADERS), error_body(self.message, self.type, self.code, self.param))


@dataclass
class Call:
    """Book-keeping for one proxied request."""

    endpoint: str
    started: float
    created_at: int
    request_id: str
    client: str | None
    project: str | None
    target: Target | None = None
    body: dict | None = None
    stream: bool = False
    upstream_model: str = ""
    client_model: str | None = None
    user: str | None = None
    upstream_wait: float = 0.0
    ttft: float | None = None
    client_wants_usage: bool = False
    recorded_overhead_ms: float | None = None  # frozen when the ledger row is written

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def overhead_ms(self) -> float:
        return max(0.0, self.elapsed_ms() - self.upstream_wait * 1000.0)


class Forwarder:
    """Owns the upstream connection pool and the active target; one per server."""

    def __init__(
        self,
        services,
        client: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport,
        *,
        listen: tuple[str, int] | None = None,
    ) -> None:
        self.services = services
        self.client = client
        self.settings = services.settings
        self.bus = services.bus
        self.target: Target | None = None
        self.listen = listen
        self.auth = services.make_auth(client)
        self.pricer: Callable[[LedgerEntry], float | None] | None = services.price
        self._loop_cache: dict[str, bool] = {}
        self._urls: dict[str, httpx.URL] = {}  # parsed once per upstream URL
        self._transport = transport  # the client's own pool
        self._extensions = {"timeout": client.timeout.as_dict()}

    # -- ledger ---------------------------------------------------------------------------

    def _record(self, call: Call, status: int, usage: Usage, error: str | None) -> LedgerEntry:
        target = call.target
        latency = call.elapsed_ms()
        overhead = max(0.0, latency - call.upstream_wait * 1000.0)
        call.recorded_overhead_ms = overhead
        entry = LedgerEntry(
            request_id=call.request_id,
            created_at=call.created_at,
            provider=target.provider.name if target else "",
            upstream_model=call.upstream_model or (target.model if target else ""),
            endpoint=call.endpoint,
            stream=call.stream,
            status_code=status,
            profile_id=target.profile_id if target else None,
            profile_name=target.profile_name if target else None,
            client_model=call.client_model,
            prompt_tokens=usage.prompt_tokens or 0,
            completion_tokens=usage.completion_tokens or 0,
            total_tokens=usage.total_tokens or 0,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            upstream_cost_usd=usage.upstream_cost_usd,
            latency_ms=round(latency, 3),
            ttft_ms=None if call.ttft is None else round(call.ttft * 1000.0, 3),
            overhead_ms=round(overhead, 3),
            usage_source=usage.source,
            client=call.client,
            project=call.project,
            user=call.user,
            error=_scrub(error, target)[:2000] if error else None,
        )
        if self.pricer is not None:
            try:
                entry.cost_usd = self.pricer(entry)
            except Exception:  # noqa: BLE001 - an unknown price stays null, never breaks the request
                entry.cost_usd = None
        self.services.writer.submit(entry)
        if self.bus.active:
            self.bus.publish(RequestFinished(entry))
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %d %s prompt=%d completion=%d %.1fms%s",
                "POST",
                "/v1/chat/completions" if call.endpoint == "chat" else "/v1/embeddings",
                status,
                entry.upstream_model or "-",
                entry.prompt_tokens,
                entry.completion_tokens,
                entry.latency_ms,
                f" error={entry.error[:120]!r}" if entry.error else "",
            )
        return entry

    def _fail(self, call: Call, exc: ProxyError) -> Reply:
        self._record(call, exc.status, Usage.zero(), exc.message)
        reply = exc.reply()
        reply.headers.extend(self._hermit_headers(call))
        return reply

    def _hermit_headers(self, call: Call) -> list[tuple[str, str]]:
        overhead = call.recorded_overhead_ms if call.recorded_overhead_ms is not None else call.overhead_ms()
        return [("x-hermit-overhead-ms", f"{overhead:.3f}"), ("x-hermit-request-id", call.request_id)]

    # -- entry points ---------------------------------------------------------------------

    def new_call(self, endpoint: str, headers: Mapping[str, str]) -> Call:
        return Call(
            endpoint=endpoint,
            started=time.perf_counter(),
            created_at=now_ms(),
            request_id=uuid.uuid4().hex,
            client=client_name(headers.get("x-hermit-client"), headers.get("user-agent")),
            project=(headers.get("x-hermit-project") or "").strip()[:200] or None,
        )

    def reject(self, call: Call, exc: ProxyError) -> Reply:
        """A request refused before it was read (for example too large)."""
        call.target = self.target
        return self._fail(call, exc)

    async def chat(self, call: Call, raw: bytes, headers: Mapping[str, str]) -> Reply:
        try:
            upstream_body = self._prepare(call, raw, headers, chat=True)
        except ProxyError as exc:
            return self._fail(call, exc)
        return await self._forward(call, upstream_body)

    async def embeddings(self, call: Call, raw: bytes, headers: Mapping[str, str]) -> Reply:
        try:
            upstream_body = self._prepare(call, raw, headers, chat=False)
        except ProxyError as exc:
            return self._fail(call, exc)
        return await self._forward(call, upstream_body)

    # -- request preparation --------------------------------------------------------------

    def _prepare(self, call: Call, raw: bytes, headers: Mapping[str, str], chat: bool) -> dict:
        call.target = target = self.target
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ProxyError(400, f"request body is not valid JSON: {exc}", "invalid_request_error", "invalid_json")
        if not isinstance(body, dict):
            raise ProxyError(400, "request body must be a JSON object", "invalid_request_error", "invalid_body")
        call.body = body
        client_model = body.get("model")
        call.client_model = client_model if isinstance(client_model, str) else None
        user = body.get("user")
        call.user = user[:200] if isinstance(user, str) and user else None
        call.stream = bool(body.get("stream")) if chat else False
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise ProxyError(
                    400, "'messages' is required and must be a non-empty array", "invalid_request_error",
                    "missing_required_parameter", "messages",
                )
        elif body.get("input") in (None, "", []):
            raise ProxyError(400, "'input' is required", "invalid_request_error", "missing_required_parameter", "input")
        if target is None:
            raise ProxyError(503, "no active profile: add one with `hermit profiles add ... --activate`", "server_error", "no_active_profile")
        if headers.get(HOP_HEADER) or self._points_at_self(target):
            raise ProxyError(
                508,
                f"profile {target.profile_name!r} points back at Hermit itself ({target.base_url}); "
                "set its base_url to the real upstream",
                "proxy_loop",
                "proxy_loop",
            )
        out = dict(body)
        if chat:
            if target.allow_client_model_override and call.client_model:
                model = call.client_model
            else:
                model = target.model
            if call.stream:
                options = out.get("stream_options")
                options = dict(options) if isinstance(options, dict) else {}
                call.client_wants_usage = bool(options.get("include_usage"))
                options["include_usage"] = True
                out["stream_options"] = options
            else:
                out.pop("stream_options", None)
            if (
                target.default_max_tokens
                and out.get("max_tokens") is None
                and out.get("max_completion_tokens") is None
            ):
                out[prov.limit_field_for(target.provider, model)] = target.default_max_tokens
            if target.provider.strict_fields:
                out = {k: v for k, v in out.items() if k in prov.OPENAI_CHAT_FIELDS}
        else:
            model = target.embedding_model or call.client_model or target.model
        out["model"] = model
        call.upstream_model = model
        return out

    def _points_at_self(self, target: Target) -> bool:
        if self.listen is None:
            return False
        cached = self._loop_cache.get(target.base_url)
        if cached is None:
            cached = self._loop_cache[target.base_url] = _same_endpoint(target.base_url, self.listen)
        return cached

    async def _headers_for(self, target: Target, body: dict | None = None) -> tuple[str, dict[str, str]]:
        try:
            return await self.auth.resolve(target, body)
        except AuthError as exc:
            raise ProxyError(502, str(exc), "upstream_auth_error", "upstream_auth") from None

    # -- forwarding -----------------------------------------------------------------------

    async def _forward(self, call: Call, body: dict) -> Reply:
        target = call.target
        assert target is not None
        if self.bus.active:
            self.bus.publish(
                RequestStarted(
                    call.request_id, call.created_at, call.endpoint, call.stream, target.provider.name,
                    call.upstream_model, target.profile_name, call.client,
                )
            )
        path = target.provider.chat_path if call.endpoint == "chat" else target.provider.embeddings_path
        try:
            base_url, headers = await self._headers_for(target, body)
        except ProxyError as exc:
            return self._fail(call, exc)
        url = base_url.rstrip("/") + path
        added_stream_options = call.stream
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            response = await self._send(call, url, headers, payload)
            if response.status_code == 400 and added_stream_options and not call.client_wants_usage:
                text = (await self._read(call, response)).decode("utf-8", "replace")
                if "stream_options" in text:
                    body.pop("stream_options", None)
                    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
                    response = await self._send(call, url, headers, payload)
                else:
                    return self._passthrough_error(call, response, text.encode())
            if response.status_code == 401 and await self.auth.refused(target, headers):
                # Exchanged credentials (Copilot) went stale: one retry with fresh ones.
                await self._read(call, response)
                base_url, headers = await self._headers_for(target, body)
                url = base_url.rstrip("/") + path
                response = await self._send(call, url, headers, payload)
        except ProxyError as exc:
            return self._fail(call, exc)

        if response.status_code >= 400:
            try:
                data = await self._read(call, response)
            except ProxyError as exc:
                return self._fail(call, exc)
            return self._passthrough_error(call, response, data)
        content_type = response.headers.get("content-type", "")
        if call.stream and "text/event-stream" in content_type:
            return self._relay_stream(call, response)
        try:
            data = await self._read(call, response)
        except ProxyError as exc:
            return self._fail(call, exc)
        return self._finish_body(call, response, data)

    async def _send(self, call: Call, url: str, headers: dict[str, str], payload: bytes) -> httpx.Response:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 256:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        # The hot path hands the request straight to the client's pooled transport: a proxy wants
        # none of the client layers (cookie jar, auth flow, redirects) and they cost ~15% of its CPU.
        request = httpx.Request("POST", parsed, content=payload, headers=headers, extensions=self._extensions)
        t = time.perf_counter()
        try:
            return await self._transport.handle_async_request(request)
        except (httpx.HTTPError, OSError) as exc:
            raise self._upstream_failure(
                exc, f"upstream unreachable ({_host(url)})", "upstream_unreachable",
                f"upstream did not answer within {self.settings.request_timeout:g} s ({_host(url)})",
            ) from None
        finally:
            call.upstream_wait += time.perf_counter() - t

    async def _read(self, call: Call, response: httpx.Response) -> bytes:
        t = time.perf_counter()
        try:
            return await response.aread()
        except (httpx.HTTPError, OSError) as exc:
            raise self._upstream_failure(
                exc, "upstream broke off its answer", "upstream_broken",
                f"upstream did not finish its answer within {self.settings.request_timeout:g} s",
            ) from None
        finally:
            call.upstream_wait += time.perf_counter() - t
            await response.aclose()

    @staticmethod
    def _upstream_failure(exc: BaseException, broken: str, code: str, slow: str) -> ProxyError:
        """502 for a connection that failed or broke, 504 for one that timed out."""
        if _timed_out(exc):
            return ProxyError(504, slow, "upstream_timeout", "upstream_timeout")
        return ProxyError(502, f"{broken}: {_describe(exc)}", "upstream_error", code)

    def _response_headers(self, call: Call, response: httpx.Response, content_type: str) -> list[tuple[str, str]]:
        headers = [("content-type", content_type)]
        for name, value in response.headers.items():
            lower = name.lower()
            if lower in PASS_HEADERS or lower.startswith(PASS_PREFIXES):
                headers.append((lower, value))
        headers.extend(self._hermit_headers(call))
        return headers

    def _passthrough_error(self, call: Call, response: httpx.Response, data: bytes) -> Reply:
        try:
            payload = json.loads(data) if data else None
        except ValueError:
            payload = None
        message = error_text_of(payload) or data[:300].decode("utf-8", "replace").strip() or response.reason_phrase
        self._record(call, response.status_code, Usage.zero(), f"upstream {response.status_code}: {message}")
        content_type = response.headers.get("content-type", "application/json")
        return Reply(response.status_code, self._response_headers(call, response, content_type), data)

    def _finish_body(self, call: Call, response: httpx.Response, data: bytes) -> Reply:
        try:
            payload = json.loads(data)
        except ValueError:
            payload = None
        if not isinstance(payload, (dict, list)):
            return self._fail(
                call,
                ProxyError(
                    502,
                    f"upstream answered with something that is not JSON: {data[:120]!r}",
                    "upstream_error",
                    "upstream_garbage",
                ),
            )
        usage = body_usage(payload, call.body or {})
        error = error_text_of(payload) if isinstance(payload, dict) and payload.get("error") else None
        self._record(call, response.status_code, usage, error)
        return Reply(response.status_code, self._response_headers(call, response, "application/json"), data)

    def _relay_stream(self, call: Call, response: httpx.Response) -> Reply:
        accountant = StreamAccountant(strip_usage_only=not call.client_wants_usage)
        headers = self._response_headers(call, response, "text/event-stream")
        headers.append(("cache-control", "no-cache"))
        return Reply(200, headers, stream=self._stream(call, response, accountant))

    async def _stream(self, call: Call, response: httpx.Response, accountant: StreamAccountant) -> AsyncIterator[bytes]:
        parser = SSEParser()
        status = 200
        error: str | None = None
        finished = False
        recorded = False
        progress_every = 16
        next_progress = progress_every
        chunks = response.aiter_bytes().__aiter__()  # decoded: the relay carries no content-encoding
        try:
            while True:
                t = time.perf_counter()
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    call.upstream_wait += time.perf_counter() - t
                out = [event.raw for event in parser.feed(chunk) if accountant.observe(event)]
                if accountant.saw_done and not recorded:
                    # [DONE] completes the answer: write its row before the client can read it. SDKs hang
                    # up right after [DONE]; that must not turn a complete request into a 499.
                    recorded = True
                    if call.ttft is None:
                        call.ttft = time.perf_counter() - call.started
                    done_error = f"upstream error event: {accountant.error}" if accountant.error else None
                    self._record(call, 200, accountant.usage(call.body or {}), done_error)
                if out:
                    if call.ttft is None and accountant.events:
                        call.ttft = time.perf_counter() - call.started
                    yield b"".join(out)
                    if self.bus.active and accountant.content_chunks >= next_progress:
                        next_progress += progress_every
                        self.bus.publish(RequestProgress(call.request_id, accountant.content_chunks))
            finished = True
            if parser.pending().strip():
                error = "upstream stream ended in the middle of an event"
            elif not accountant.saw_done and accountant.finish_reason is None:
                error = "upstream stream ended without finishing"
        except httpx.HTTPError as exc:
            finished = True
            if _timed_out(exc):
                error = f"upstream stream stalled for more than {self.settings.request_timeout:g} s"
                status = 504
            else:
                error = f"upstream stream broke: {_describe(exc)}"
        except OSError as exc:
            error = f"upstream stream broke: {_describe(exc)}"
            finished = True
        finally:
            if not finished:
                # The client went away (the server cancelled us) or the relay failed.
                status = 499
                error = "client disconnected before the stream ended"
                asyncio.get_running_loop().create_task(response.aclose())
            else:
                await response.aclose()
            if not recorded:
                if accountant.error and not error:
                    error = f"upstream error event: {accountant.error}"
                elif accountant.error:
                    error = f"{error}; upstream error event: {accountant.error}"
                self._record(call, status, accountant.usage(call.body or {}), error)

    # -- /v1/models ------------------------------------------------------------------------

    async def models(self) -> Reply:
        target = self.target
        if target is None:
            return ProxyError(503, "no active profile", "server_error", "no_active_profile").reply()
        enforced = {
            "object": "list",
            "data": [{"id": target.model, "object": "model", "created": 0, "owned_by": target.provider.name}],
        }
        if not target.allow_client_model_override:
            return Reply(200, list(JSON_HEADERS), json.dumps(enforced).encode())
        try:
            base_url, headers = await self._headers_for(target)
            response = await self.client.get(base_url.rstrip("/") + target.provider.models_path, headers=headers)
        except (httpx.HTTPError, OSError, ProxyError) as exc:
            message = exc.message if isinstance(exc, ProxyError) else _describe(exc)
            return ProxyError(502, f"upstream model list unavailable: {message}", "upstream_error", "upstream_unreachable").reply()
        if response.status_code >= 400:
            return Reply(response.status_code, [("content-type", response.headers.get("content-type", "application/json"))], response.content)
        try:
            payload = response.json()
        except ValueError:
            return ProxyError(502, "upstream model list is not JSON", "upstream_error", "upstream_garbage").reply()
        return Reply(200, list(JSON_HEADERS), json.dumps(_as_model_list(payload, target)).encode())


def _as_model_list(payload: Any, target: Target) -> dict:
    """OpenAI's list shape from an OpenAI list or GitHub Models' bare catalog array."""
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        return {"object": "list", "data": payload["data"]}
    if isinstance(payload, list):
        data = []
        for item in payload:
            if isinstance(item, dict) and item.get("id"):
                data.append({"id": item["id"], "object": "model", "created": 0, "owned_by": item.get("publisher") or target.provider.name})
        return {"object": "list", "data": data}
    return {"object": "list", "data": []}


def _scrub(text: str, target: Target | None) -> str:
    """Never let an upstream that echoes the key put it whole into the ledger or the log."""
    key = target.api_key if target is not None else None
    if key and isinstance(key, str) and len(key) >= 8 and key in text:
        text = text.replace(key, hint(key) or "…")
    return text


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError))


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, httpx.HTTPError):
        exc = cause
    text = str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectError) or "Connect" in name:
        return f"connection failed ({text or name})"
    return text or name


def _host(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}"


_LOCAL_NAMES = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", "[::1]", "ip6-localhost"}


def _same_endpoint(base_url: str, listen: tuple[str, int]) -> bool:
    parsed = urlparse(base_url)
    host = (parsed.hostname or "").lower()
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    listen_host, listen_port = listen
    if port != listen_port:
        return False
    listen_host = listen_host.lower()
    if host == listen_host:
        return True
    if listen_host in _LOCAL_NAMES or listen_host in ("0.0.0.0", "::"):
        if host in _LOCAL_NAMES or host.startswith("127."):
            return True
        if listen_host in ("0.0.0.0", "::"):
            try:
                return host in {socket.gethostname().lower(), socket.getfqdn().lower()}
            except OSError:
                return False
    return False
